// Self-service (issue #12): GET/PATCH /users/me and GraphQL me/updateMe for
// every role: who am I, my limit and usage, changing my own password (and
// nothing else about my account). Admins keep PATCH /users/{id}.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { getJob, jobGate, submit, waitRunning, waitTerminal } from '../helpers/jobs.js';
import { ADMIN_EMAIL, startServer, type TestServer } from '../helpers/server.js';
import { ISO_UTC, randomSuffix } from './support.js';
import { ME_KEYS, challenge, codes, createApiToken, detail422, openGate, waitForGate } from './identitySupport.js';

type User = Awaited<ReturnType<TestServer['user']>>;
type Role = 'admin' | 'operator' | 'viewer';

const ME_FIELDS = 'id email role isActive maxConcurrentJobs createdAt effectiveMaxConcurrentJobs runningJobs pendingJobs';

describe.each(PROVIDERS)('self-service on %s', (provider) => {
  let s: TestServer;
  let adminId: string;
  let defaultMax: number;
  const users: Partial<Record<Role, User>> = {};

  const me = (token: string) => s.request('GET', '/users/me', { token });
  const patchMe = (token: string, body: unknown) => s.request('PATCH', '/users/me', { token, body });
  const newPassword = () => `New-${randomSuffix()}-${randomSuffix()}`;

  beforeAll(async () => {
    s = await startServer(provider);
    adminId = (await s.graphql('{ me { id } }')).data.me.id;
    [users.admin, users.operator, users.viewer] = await Promise.all([s.user('admin'), s.user('operator'), s.user('viewer')]);
    const limits = await s.request('GET', '/admin/limits', { token: s.adminToken });
    defaultMax = limits.body.default_max_concurrent_jobs;
    expect(defaultMax).toBeGreaterThanOrEqual(1);
  });
  afterAll(async () => {
    await s?.stop();
  });

  describe('GET /users/me', () => {
    it.each(['admin', 'operator', 'viewer'] as const)('answers a %s with their own account, limit and usage', async (role) => {
      const u = users[role]!;
      const res = await me(u.token);
      expect(res.status, res.text).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(ME_KEYS);
      expect(res.body).toEqual({
        id: u.id, email: u.email, role, is_active: true, max_concurrent_jobs: null, created_at: expect.stringMatching(ISO_UTC),
        effective_max_concurrent_jobs: defaultMax, running_jobs: 0, pending_jobs: 0,
      });
    });

    it('answers the bootstrap admin too', async () => {
      const res = await me(s.adminToken);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: adminId, email: ADMIN_EMAIL, role: 'admin' });
    });

    it('works with an API token of any scope, as the token\'s owner', async () => {
      for (const [role, scopes] of [['operator', ['jobs:read']], ['operator', ['batches:write']], ['viewer', ['batches:read']], ['admin', ['admin']]] as const) {
        const u = users[role]!;
        const t = await createApiToken(s, u.token, [...scopes]);
        const res = await me(t.token);
        expect(res.status, `${role} ${scopes}: ${res.text}`).toBe(200);
        expect(res.body).toMatchObject({ id: u.id, email: u.email, role });
        const gql = await s.graphql('{ me { id role } }', {}, t.token);
        expect(gql.data?.me, JSON.stringify(gql)).toEqual({ id: u.id, role: role.toUpperCase() });
      }
    });

    it('without a token: 401', async () => {
      const res = await me('');
      expect(res.status).toBe(401);
    });

    it('counts a job held running and one pending behind a limit of 1 (REST and GraphQL)', async () => {
      const u = await s.user('operator', { max_concurrent_jobs: 1 });
      const gate = jobGate('me');
      const first = await submit(s, u.token, { command: waitForGate(gate) });
      await waitRunning(s, u.token, first.id);
      const second = await submit(s, u.token, { command: waitForGate(gate) });
      try {
        const res = await me(u.token);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ max_concurrent_jobs: 1, effective_max_concurrent_jobs: 1, running_jobs: 1, pending_jobs: 1 });
        expect((await getJob(s, u.token, second.id)).status).toBe('pending');

        const gql = await s.graphql(`{ me { ${ME_FIELDS} } }`, {}, u.token);
        expect(gql.errors).toBeUndefined();
        expect(gql.data.me).toMatchObject({ id: u.id, maxConcurrentJobs: 1, effectiveMaxConcurrentJobs: 1, runningJobs: 1, pendingJobs: 1 });

        // Nobody else's counts move.
        expect((await me(users.operator!.token)).body).toMatchObject({ running_jobs: 0, pending_jobs: 0, effective_max_concurrent_jobs: defaultMax });
        // Raising the override changes the effective limit.
        expect((await s.request('POST', `/admin/limits/users/${u.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 3 } })).status).toBe(200);
        await waitRunning(s, u.token, second.id);
        expect((await me(u.token)).body).toMatchObject({ max_concurrent_jobs: 3, effective_max_concurrent_jobs: 3, running_jobs: 2, pending_jobs: 0 });
      } finally {
        openGate(gate);
      }
      await waitTerminal(s, u.token, first.id);
      await waitTerminal(s, u.token, second.id);
      expect((await me(u.token)).body).toMatchObject({ running_jobs: 0, pending_jobs: 0 });
    });
  });

  describe('PATCH /users/me', () => {
    it.each(['operator', 'viewer', 'admin'] as const)('a %s changes their own password: 200, the new one logs in, the old one no longer', async (role) => {
      const u = await s.user(role);
      const password = newPassword();
      const res = await patchMe(u.token, { current_password: u.password, password });
      expect(res.status, res.text).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(ME_KEYS);
      expect(res.body).toMatchObject({ id: u.id, email: u.email, role, is_active: true });
      expect(res.text).not.toContain(password);
      expect(await s.token(u.email, password)).toEqual(expect.any(String));
      await expect(s.token(u.email, u.password)).rejects.toThrow(/401/);
      // The session that made the change keeps working.
      expect((await me(u.token)).status).toBe(200);
    });

    it('revokes the user\'s other password sessions, not the one used, and not their API tokens', async () => {
      const u = await s.user('operator');
      const other = await s.token(u.email, u.password);
      const apiToken = await createApiToken(s, u.token, ['jobs:read']);
      expect((await me(other)).status).toBe(200);
      expect((await patchMe(u.token, { current_password: u.password, password: newPassword() })).status).toBe(200);
      const revoked = await me(other);
      expect(revoked.status).toBe(401);
      expect(revoked.headers.get('www-authenticate')).toBe(challenge('token revoked'));
      expect((await me(u.token)).status).toBe(200);
      expect((await me(apiToken.token)).status).toBe(200);
    });

    it('a wrong current password → 400 "Current password is incorrect", nothing changes', async () => {
      const u = await s.user('operator');
      const res = await patchMe(u.token, { current_password: 'not-the-password', password: newPassword() });
      expect(res.status, res.text).toBe(400);
      expect(res.body).toEqual({ detail: 'Current password is incorrect' });
      expect(await s.token(u.email, u.password)).toEqual(expect.any(String));
      expect((await me(u.token)).status).toBe(200);
    });

    it('role, is_active, max_concurrent_jobs or email in the body → 422 extra_forbidden, nothing changes', async () => {
      const u = await s.user('operator');
      const password = newPassword();
      for (const [field, value] of [['role', 'admin'], ['is_active', false], ['max_concurrent_jobs', 100], ['email', 'someone-else@example.com']] as const) {
        const issues = detail422(await patchMe(u.token, { current_password: u.password, password, [field]: value }), field);
        expect(issues, field).toContainEqual(expect.objectContaining({ type: 'extra_forbidden', loc: ['body', field] }));
        // Only the field alone (no password change asked) is refused the same way.
        const alone = detail422(await patchMe(u.token, { [field]: value }), `${field} alone`);
        expect(alone.map((i) => i.loc)).toContainEqual(['body', field]);
      }
      const after = await me(u.token);
      expect(after.body).toMatchObject({ role: 'operator', is_active: true, max_concurrent_jobs: null, email: u.email });
      // The password did not change either.
      expect(await s.token(u.email, u.password)).toEqual(expect.any(String));
    });

    it('a short new password or a missing field → 422 at the field', async () => {
      const u = await s.user('viewer');
      const short = detail422(await patchMe(u.token, { current_password: u.password, password: 'short' }), 'short');
      expect(short).toContainEqual(expect.objectContaining({ type: 'string_too_short', loc: ['body', 'password'] }));
      const long = detail422(await patchMe(u.token, { current_password: u.password, password: 'x'.repeat(257) }), 'long');
      expect(long).toContainEqual(expect.objectContaining({ type: 'string_too_long', loc: ['body', 'password'] }));
      const noCurrent = detail422(await patchMe(u.token, { password: newPassword() }), 'no current');
      expect(noCurrent).toContainEqual(expect.objectContaining({ type: 'missing', loc: ['body', 'current_password'] }));
      const noNew = detail422(await patchMe(u.token, { current_password: u.password }), 'no new');
      expect(noNew).toContainEqual(expect.objectContaining({ type: 'missing', loc: ['body', 'password'] }));
      expect(await s.token(u.email, u.password)).toEqual(expect.any(String));
    });

    it('/users/{id} stays admin-only: an operator or viewer PATCHing or GETting their own id → 403', async () => {
      for (const role of ['operator', 'viewer'] as const) {
        const u = users[role]!;
        const patch = await s.request('PATCH', `/users/${u.id}`, { token: u.token, body: { password: newPassword() } });
        expect(patch.status, `${role}: ${patch.text}`).toBe(403);
        expect((await s.request('GET', `/users/${u.id}`, { token: u.token })).status).toBe(403);
      }
      // The admin's route still works, for any user.
      const target = await s.user('viewer');
      const password = newPassword();
      expect((await s.request('PATCH', `/users/${target.id}`, { token: s.adminToken, body: { password } })).status).toBe(200);
      expect(await s.token(target.email, password)).toEqual(expect.any(String));
    });
  });

  describe('GraphQL', () => {
    it('me carries the limit and usage; updateMe changes the password', async () => {
      const u = await s.user('viewer');
      const got = await s.graphql(`{ me { ${ME_FIELDS} } }`, {}, u.token);
      expect(got.errors).toBeUndefined();
      expect(got.data.me).toEqual({
        id: u.id, email: u.email, role: 'VIEWER', isActive: true, maxConcurrentJobs: null, createdAt: expect.stringMatching(ISO_UTC),
        effectiveMaxConcurrentJobs: defaultMax, runningJobs: 0, pendingJobs: 0,
      });

      const wrong = await s.graphql('mutation ($c: String!, $p: String!) { updateMe(input: {currentPassword: $c, password: $p}) { id } }', { c: 'nope-nope-nope', p: newPassword() }, u.token);
      expect(wrong.data ?? null).toBeNull();
      expect(wrong.errors?.[0]?.message).toBe('Current password is incorrect');

      const short = await s.graphql('mutation ($c: String!, $p: String!) { updateMe(input: {currentPassword: $c, password: $p}) { id } }', { c: u.password, p: 'short' }, u.token);
      expect(codes(short)).toEqual(['BAD_USER_INPUT']);

      const password = newPassword();
      const ok = await s.graphql('mutation ($c: String!, $p: String!) { updateMe(input: {currentPassword: $c, password: $p}) { id email role effectiveMaxConcurrentJobs } }', { c: u.password, p: password }, u.token);
      expect(ok.errors).toBeUndefined();
      expect(ok.data.updateMe).toEqual({ id: u.id, email: u.email, role: 'VIEWER', effectiveMaxConcurrentJobs: defaultMax });
      expect(await s.token(u.email, password)).toEqual(expect.any(String));

      // An API token may not.
      const t = await createApiToken(s, u.token, ['jobs:read']);
      const byToken = await s.graphql('mutation ($c: String!, $p: String!) { updateMe(input: {currentPassword: $c, password: $p}) { id } }', { c: password, p: newPassword() }, t.token);
      expect(codes(byToken)).toEqual(['FORBIDDEN']);
      expect(await s.token(u.email, password)).toEqual(expect.any(String));
    });
  });
});
