// User provisioning and limits (admin-only), over REST and GraphQL. Every
// response this file receives is checked for password material.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../src/rest/routes.js';
import { PROVIDERS } from '../helpers/db.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startServer, type TestServer } from '../helpers/server.js';
import { ISO_UTC, USER_READ_KEYS, concretePath, randomSuffix } from './support.js';

type Role = 'admin' | 'operator' | 'viewer';
interface Created {
  id: string;
  email: string;
  password: string;
  token: string;
}

const USER_FIELDS = 'id email role isActive maxConcurrentJobs createdAt';
const LIMITS_FIELDS = 'defaultMaxConcurrentJobs overrides { userId email maxConcurrentJobs }';

// /users/me is every user's own account (selfService.test.ts).
const adminOnlyRoutes = routes.filter((r) => (r.path.startsWith('/users') && !r.path.startsWith('/users/me')) || r.path.startsWith('/admin/limits'));

describe.each(PROVIDERS)('users and limits on %s', (provider) => {
  let s: TestServer;
  let adminId: string;
  let operator: Created;
  let viewer: Created;
  let second: Created;
  /** Every plaintext password this file has sent in a request that was meant to succeed. */
  const secrets = new Set<string>([ADMIN_PASSWORD]);

  function assertNoPasswordMaterial(text: string, what: string) {
    for (const needle of ['password_hash', 'passwordHash', '$argon2', ...secrets]) {
      if (text.includes(needle)) throw new Error(`${what}: the response contains ${needle === ADMIN_PASSWORD || secrets.has(needle) ? 'a plaintext password' : JSON.stringify(needle)}: ${text.slice(0, 300)}`);
    }
  }

  /** s.request, with every response body checked for password material. */
  const req: TestServer['request'] = async (method, path, opts) => {
    const res = await s.request(method, path, opts);
    assertNoPasswordMaterial(res.text, `${method} ${path}`);
    return res;
  };

  /** s.graphql, with every response checked for password material. */
  async function gql(query: string, variables: Record<string, unknown> = {}, token: string | null = s.adminToken) {
    const res = await s.graphql(query, variables, token);
    assertNoPasswordMaterial(JSON.stringify(res), `graphql ${query.slice(0, 40)}`);
    return res;
  }

  async function createUser(role: Role, extra: Record<string, unknown> = {}): Promise<Created> {
    const email = `${role}-${randomSuffix()}@example.com`;
    const password = `Pw-${randomSuffix()}-${randomSuffix()}`;
    secrets.add(password);
    const res = await req('POST', '/users', { token: s.adminToken, body: { email, password, role, ...extra } });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.id, email, password, token: await s.token(email, password) };
  }

  function expectUserRead(body: any, expected: { id?: string; email?: string; role?: Role; is_active?: boolean; max_concurrent_jobs?: number | null } = {}) {
    expect(Object.keys(body).sort()).toEqual(USER_READ_KEYS);
    expect(typeof body.id).toBe('string');
    expect(body.created_at).toMatch(ISO_UTC);
    expect(['admin', 'operator', 'viewer']).toContain(body.role);
    expect(typeof body.is_active).toBe('boolean');
    expect(body).toMatchObject(expected);
  }

  beforeAll(async () => {
    s = await startServer(provider);
    adminId = (await s.graphql('{ me { id } }')).data.me.id;
    operator = await createUser('operator');
    viewer = await createUser('viewer');
  });
  afterAll(async () => {
    await s?.stop();
  });

  describe('REST /users', () => {
    it('creates operators and viewers with a UserRead body, email normalised to lower case', async () => {
      const cases = [
        { role: 'operator' as const, extra: {}, expected: { is_active: true, max_concurrent_jobs: null } },
        { role: 'viewer' as const, extra: { is_active: false, max_concurrent_jobs: 3 }, expected: { is_active: false, max_concurrent_jobs: 3 } },
      ];
      for (const { role, extra, expected } of cases) {
        const email = `New.${role}-${randomSuffix()}@Example.com`;
        const password = `Pw-${randomSuffix()}-${randomSuffix()}`;
        secrets.add(password);
        const res = await req('POST', '/users', { token: s.adminToken, body: { email, password, role, ...extra } });
        expect(res.status).toBe(201);
        expectUserRead(res.body, { email: email.toLowerCase(), role, ...expected });
        expect(Math.abs(Date.parse(res.body.created_at) - Date.now())).toBeLessThan(10 * 60_000);
        const again = await req('GET', `/users/${res.body.id}`, { token: s.adminToken });
        expect(again.body).toEqual(res.body);
      }
    });

    it('answers 409 for an email that is taken in another letter case', async () => {
      const res = await req('POST', '/users', { token: s.adminToken, body: { email: operator.email.toUpperCase(), password: 'Another-pass-123', role: 'viewer' } });
      expect(res.status).toBe(409);
      expect(res.body).toEqual({ detail: expect.any(String) });
      const admin = await req('POST', '/users', { token: s.adminToken, body: { email: 'Admin@Example.com', password: 'Another-pass-123', role: 'viewer' } });
      expect(admin.status).toBe(409);
    });

    it('lists every user in creation order and gets one by id', async () => {
      const list = await req('GET', '/users', { token: s.adminToken });
      expect(list.status).toBe(200);
      expect(Array.isArray(list.body)).toBe(true);
      for (const u of list.body) expectUserRead(u);
      const emails = list.body.map((u: { email: string }) => u.email);
      expect(emails).toEqual(expect.arrayContaining([ADMIN_EMAIL, operator.email, viewer.email]));
      const created = list.body.map((u: { created_at: string; id: string }) => [u.created_at, u.id] as const);
      const sorted = [...created].sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
      expect(created).toEqual(sorted);
      expect(list.body[0].email).toBe(ADMIN_EMAIL);

      const one = await req('GET', `/users/${operator.id}`, { token: s.adminToken });
      expect(one.status).toBe(200);
      expect(one.body).toEqual(list.body.find((u: { id: string }) => u.id === operator.id));
    });

    it('answers 404 {"detail"} for an unknown or malformed user id', async () => {
      for (const id of [randomUUID(), 'not-a-uuid', '12345', `${operator.id}x`]) {
        const get = await req('GET', `/users/${encodeURIComponent(id)}`, { token: s.adminToken });
        expect(get.status, `GET ${id}`).toBe(404);
        expect(get.body).toEqual({ detail: expect.any(String) });
        const patch = await req('PATCH', `/users/${encodeURIComponent(id)}`, { token: s.adminToken, body: { role: 'viewer' } });
        expect(patch.status, `PATCH ${id}`).toBe(404);
        expect(patch.body).toEqual({ detail: expect.any(String) });
        const limit = await req('POST', `/admin/limits/users/${encodeURIComponent(id)}`, { token: s.adminToken, body: { max_concurrent_jobs: 2 } });
        expect(limit.status, `POST limits ${id}`).toBe(404);
        expect(limit.body).toEqual({ detail: expect.any(String) });
      }
    });

    it('PATCH role ends the user\'s sessions at once; a new login carries the new role', async () => {
      const up = await req('PATCH', `/users/${viewer.id}`, { token: s.adminToken, body: { role: 'admin' } });
      expect(up.status).toBe(200);
      expectUserRead(up.body, { id: viewer.id, email: viewer.email, role: 'admin' });
      const stale = await req('GET', '/users', { token: viewer.token });
      expect(stale.status).toBe(401);
      expect(stale.headers.get('www-authenticate')).toBe('Bearer error="invalid_token", error_description="token revoked"');
      viewer.token = await s.token(viewer.email, viewer.password);
      expect((await req('GET', '/users', { token: viewer.token })).status).toBe(200);

      const down = await req('PATCH', `/users/${viewer.id}`, { token: s.adminToken, body: { role: 'operator' } });
      expect(down.status).toBe(200);
      expect(down.body.role).toBe('operator');
      expect((await gql('{ me { role } }', {}, viewer.token)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      viewer.token = await s.token(viewer.email, viewer.password);
      expect((await req('GET', '/users', { token: viewer.token })).status).toBe(403);
      expect((await gql('{ me { role } }', {}, viewer.token)).data.me.role).toBe('OPERATOR');

      const back = await req('PATCH', `/users/${viewer.id}`, { token: s.adminToken, body: { role: 'viewer' } });
      expect(back.body.role).toBe('viewer');
      viewer.token = await s.token(viewer.email, viewer.password);
      expect((await gql('{ me { role } }', {}, viewer.token)).data.me.role).toBe('VIEWER');
    });

    it('PATCH password: the new password signs in, the old one no longer does', async () => {
      const newPassword = `Changed-${randomSuffix()}-pw`;
      secrets.add(newPassword);
      const res = await req('PATCH', `/users/${operator.id}`, { token: s.adminToken, body: { password: newPassword } });
      expect(res.status).toBe(200);
      expectUserRead(res.body, { email: operator.email, role: 'operator' });

      const old = await req('POST', '/auth/token', { raw: new URLSearchParams({ username: operator.email, password: operator.password }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(old.status).toBe(401);
      const fresh = await req('POST', '/auth/token', { raw: new URLSearchParams({ username: operator.email, password: newPassword }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(fresh.status).toBe(200);
      operator = { ...operator, password: newPassword, token: fresh.body.access_token };
    });

    it('PATCH is_active: false locks the user out at once; true lets them log in again', async () => {
      const off = await req('PATCH', `/users/${operator.id}`, { token: s.adminToken, body: { is_active: false } });
      expect(off.status).toBe(200);
      expect(off.body.is_active).toBe(false);
      const rejected = await req('GET', `/users/${operator.id}`, { token: operator.token });
      expect(rejected.status).toBe(401);
      expect(rejected.body).toEqual({ detail: 'Not authenticated' });
      expect((await gql('{ me { id } }', {}, operator.token)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

      const on = await req('PATCH', `/users/${operator.id}`, { token: s.adminToken, body: { is_active: true } });
      expect(on.status).toBe(200);
      expect(on.body.is_active).toBe(true);
      // The sessions the deactivation ended stay ended.
      expect((await gql('{ me { id } }', {}, operator.token)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      operator.token = await s.token(operator.email, operator.password);
      expect((await gql('{ me { id } }', {}, operator.token)).data.me.id).toBe(operator.id);
    });

    it('PATCH max_concurrent_jobs sets the override and null clears it', async () => {
      const set = await req('PATCH', `/users/${viewer.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 7 } });
      expect(set.status).toBe(200);
      expect(set.body.max_concurrent_jobs).toBe(7);
      expect((await req('GET', `/users/${viewer.id}`, { token: s.adminToken })).body.max_concurrent_jobs).toBe(7);
      const limits = await req('GET', '/admin/limits', { token: s.adminToken });
      expect(limits.body.overrides).toContainEqual({ user_id: viewer.id, email: viewer.email, max_concurrent_jobs: 7 });

      const untouched = await req('PATCH', `/users/${viewer.id}`, { token: s.adminToken, body: { role: 'viewer' } });
      expect(untouched.body.max_concurrent_jobs).toBe(7);

      const cleared = await req('PATCH', `/users/${viewer.id}`, { token: s.adminToken, body: { max_concurrent_jobs: null } });
      expect(cleared.status).toBe(200);
      expect(cleared.body.max_concurrent_jobs).toBeNull();
      const after = await req('GET', '/admin/limits', { token: s.adminToken });
      expect(after.body.overrides.map((o: { user_id: string }) => o.user_id)).not.toContain(viewer.id);
    });

    it('refuses to demote or deactivate the last active admin with 400, but demotes one of two admins', async () => {
      for (const body of [{ role: 'operator' }, { role: 'viewer' }, { is_active: false }]) {
        const res = await req('PATCH', `/users/${adminId}`, { token: s.adminToken, body });
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body).toEqual({ detail: expect.any(String) });
      }
      // An inactive second admin does not count.
      const dormant = await req('POST', '/users', { token: s.adminToken, body: { email: `dormant-${randomSuffix()}@example.com`, password: 'Dormant-pass-1', role: 'admin', is_active: false } });
      expect(dormant.status).toBe(201);
      expect((await req('PATCH', `/users/${adminId}`, { token: s.adminToken, body: { is_active: false } })).status).toBe(400);
      expect((await gql('{ me { role isActive } }')).data.me).toEqual({ role: 'ADMIN', isActive: true });

      second = await createUser('admin');
      const demoted = await req('PATCH', `/users/${second.id}`, { token: s.adminToken, body: { role: 'operator' } });
      expect(demoted.status).toBe(200);
      expect(demoted.body.role).toBe('operator');
      expect((await req('GET', '/users', { token: second.token })).status).toBe(401);
      second.token = await s.token(second.email, second.password);
      expect((await req('GET', '/users', { token: second.token })).status).toBe(403);
      // And now the first admin is the last one again.
      expect((await req('PATCH', `/users/${adminId}`, { token: s.adminToken, body: { role: 'viewer' } })).status).toBe(400);
    });

    it('never leaves zero active admins when the last two deactivate themselves at the same time', async () => {
      // The second admin of the test above, an admin again.
      expect((await req('PATCH', `/users/${second.id}`, { token: s.adminToken, body: { role: 'admin' } })).status).toBe(200);
      const rounds: string[] = [];
      try {
        for (let i = 0; i < 6; i++) {
          // A deactivation ends the sessions of whoever went: both log in afresh each round.
          s.adminToken = await s.token(ADMIN_EMAIL, ADMIN_PASSWORD);
          second.token = await s.token(second.email, second.password);
          const [a, b] = await Promise.all([
            req('PATCH', `/users/${adminId}`, { token: s.adminToken, body: { is_active: false } }),
            req('PATCH', `/users/${second.id}`, { token: second.token, body: { is_active: false } }),
          ]);
          rounds.push(`${a.status}/${b.status}`);
          // One of them may go; the other must get a 400 (or, if it came second, a 401).
          expect([a.status, b.status].filter((st) => st === 200).length, `rounds so far: ${rounds.join(' ')}`).toBeLessThanOrEqual(1);
          const [gone, active] = a.status === 200 ? [adminId, second.token] : [second.id, s.adminToken];
          const back = await req('PATCH', `/users/${gone}`, { token: active, body: { is_active: true } });
          expect(back.status).toBe(200);
        }
      } finally {
        // If both went, nobody can use the API any more: repair the database
        // directly so that the rest of this file still runs.
        await s.app.db.prisma.user.updateMany({ where: { id: { in: [adminId, second.id] } }, data: { isActive: true, role: 'admin' } });
        s.adminToken = await s.token(ADMIN_EMAIL, ADMIN_PASSWORD);
        await req('PATCH', `/users/${second.id}`, { token: s.adminToken, body: { is_active: false } });
      }
    });
  });

  describe('REST /admin/limits', () => {
    it('GET gives the default and the overrides in the documented shape', async () => {
      const res = await req('GET', '/admin/limits', { token: s.adminToken });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['default_max_concurrent_jobs', 'overrides']);
      expect(res.body.default_max_concurrent_jobs).toBe(4);
      for (const o of res.body.overrides) {
        expect(Object.keys(o).sort()).toEqual(['email', 'max_concurrent_jobs', 'user_id']);
      }
    });

    it('POST global sets the default and answers the same shape', async () => {
      const res = await req('POST', '/admin/limits/global', { token: s.adminToken, body: { max_concurrent_jobs: 9 } });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['default_max_concurrent_jobs', 'overrides']);
      expect(res.body.default_max_concurrent_jobs).toBe(9);
      expect((await req('GET', '/admin/limits', { token: s.adminToken })).body.default_max_concurrent_jobs).toBe(9);
      for (const bad of [0, 10001, 2.5, '5', null]) {
        const r = await req('POST', '/admin/limits/global', { token: s.adminToken, body: { max_concurrent_jobs: bad } });
        expect(r.status, JSON.stringify(bad)).toBe(422);
        expect(r.body.detail[0].loc).toEqual(['body', 'max_concurrent_jobs']);
      }
      expect((await req('POST', '/admin/limits/global', { token: s.adminToken, body: { max_concurrent_jobs: 4 } })).body.default_max_concurrent_jobs).toBe(4);
    });

    it('POST users/{id} sets an override and null clears it', async () => {
      const set = await req('POST', `/admin/limits/users/${operator.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 2 } });
      expect(set.status).toBe(200);
      expect(Object.keys(set.body).sort()).toEqual(['default_max_concurrent_jobs', 'overrides']);
      expect(set.body.overrides).toContainEqual({ user_id: operator.id, email: operator.email, max_concurrent_jobs: 2 });
      expect((await req('GET', `/users/${operator.id}`, { token: s.adminToken })).body.max_concurrent_jobs).toBe(2);

      const cleared = await req('POST', `/admin/limits/users/${operator.id}`, { token: s.adminToken, body: { max_concurrent_jobs: null } });
      expect(cleared.status).toBe(200);
      expect(cleared.body.overrides.map((o: { user_id: string }) => o.user_id)).not.toContain(operator.id);
      expect((await req('GET', `/users/${operator.id}`, { token: s.adminToken })).body.max_concurrent_jobs).toBeNull();

      const missing = await req('POST', `/admin/limits/users/${operator.id}`, { token: s.adminToken, body: {} });
      expect(missing.status).toBe(422);
    });
  });

  describe('roles', () => {
    it('operators and viewers get 403 on every users and limits route, and nothing changes', async () => {
      expect(adminOnlyRoutes.length).toBeGreaterThanOrEqual(7);
      const before = await req('GET', '/admin/limits', { token: s.adminToken });
      const failures: string[] = [];
      for (const who of [operator, viewer]) {
        for (const r of adminOnlyRoutes) {
          const email = `intruder-${randomSuffix()}@example.com`;
          const bodies: Record<string, unknown> = {
            'POST /users': { email, password: 'Intruder-pass-1', role: 'admin' },
            'PATCH /users/{id}': { role: 'admin' },
            'POST /admin/limits/global': { max_concurrent_jobs: 999 },
            'POST /admin/limits/users/{id}': { max_concurrent_jobs: 999 },
          };
          const res = await req(r.method, concretePath(r, who.id), { token: who.token, body: r.body ? (bodies[`${r.method} ${r.path}`] ?? {}) : undefined });
          if (res.status !== 403 || typeof res.body?.detail !== 'string') failures.push(`${r.method} ${r.path} as ${who.email}: ${res.status} ${res.text.slice(0, 100)}`);
        }
      }
      expect(failures).toEqual([]);
      expect((await req('GET', '/admin/limits', { token: s.adminToken })).body).toEqual(before.body);
      const me = await req('GET', `/users/${operator.id}`, { token: s.adminToken });
      expect(me.body.role).toBe('operator');
    });
  });

  describe('GraphQL', () => {
    it('users, user, createUser and updateUser work for an admin', async () => {
      const list = await gql(`{ users { ${USER_FIELDS} } }`);
      expect(list.errors).toBeUndefined();
      expect(list.data.users.map((u: { email: string }) => u.email)).toEqual(expect.arrayContaining([ADMIN_EMAIL, operator.email]));

      const email = `gql-${randomSuffix()}@example.com`;
      const password = `Gql-pass-${randomSuffix()}`;
      secrets.add(password);
      const created = await gql(`mutation($input: CreateUserInput!) { createUser(input: $input) { ${USER_FIELDS} } }`, {
        input: { email, password, role: 'VIEWER', maxConcurrentJobs: 5 },
      });
      expect(created.errors).toBeUndefined();
      expect(created.data.createUser).toMatchObject({ email, role: 'VIEWER', isActive: true, maxConcurrentJobs: 5 });
      expect(created.data.createUser.createdAt).toMatch(ISO_UTC);
      const id = created.data.createUser.id;

      const one = await gql(`query($id: ID!) { user(id: $id) { ${USER_FIELDS} } }`, { id });
      expect(one.data.user).toEqual(created.data.createUser);

      const dup = await gql(`mutation($input: CreateUserInput!) { createUser(input: $input) { id } }`, { input: { email: email.toUpperCase(), password, role: 'VIEWER' } });
      expect(dup.errors?.[0]?.extensions?.code).toBe('CONFLICT');

      const updated = await gql(`mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { ${USER_FIELDS} } }`, {
        id,
        input: { role: 'OPERATOR', maxConcurrentJobs: null },
      });
      expect(updated.errors).toBeUndefined();
      expect(updated.data.updateUser).toMatchObject({ id, role: 'OPERATOR', maxConcurrentJobs: null, isActive: true });

      const unknown = await gql(`query($id: ID!) { user(id: $id) { id } }`, { id: 'nope' });
      expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    });

    it('limits, setDefaultJobLimit and setUserJobLimit work for an admin', async () => {
      const limits = await gql(`{ limits { ${LIMITS_FIELDS} } }`);
      expect(limits.errors).toBeUndefined();
      expect(limits.data.limits.defaultMaxConcurrentJobs).toBe(4);

      const def = await gql(`mutation { setDefaultJobLimit(max: 6) { ${LIMITS_FIELDS} } }`);
      expect(def.data.setDefaultJobLimit.defaultMaxConcurrentJobs).toBe(6);
      expect((await req('GET', '/admin/limits', { token: s.adminToken })).body.default_max_concurrent_jobs).toBe(6);
      const bad = await gql(`mutation { setDefaultJobLimit(max: 0) { defaultMaxConcurrentJobs } }`);
      expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      await gql(`mutation { setDefaultJobLimit(max: 4) { defaultMaxConcurrentJobs } }`);

      const set = await gql(`mutation($u: ID!) { setUserJobLimit(userId: $u, max: 3) { ${LIMITS_FIELDS} } }`, { u: viewer.id });
      expect(set.data.setUserJobLimit.overrides).toContainEqual({ userId: viewer.id, email: viewer.email, maxConcurrentJobs: 3 });
      const cleared = await gql(`mutation($u: ID!) { setUserJobLimit(userId: $u, max: null) { ${LIMITS_FIELDS} } }`, { u: viewer.id });
      expect(cleared.data.setUserJobLimit.overrides.map((o: { userId: string }) => o.userId)).not.toContain(viewer.id);
    });

    it('gives FORBIDDEN to operators and viewers for every user and limit operation', async () => {
      const ops: [string, Record<string, unknown>][] = [
        ['{ users { id } }', {}],
        ['query($id: ID!) { user(id: $id) { id } }', { id: adminId }],
        ['mutation($input: CreateUserInput!) { createUser(input: $input) { id } }', { input: { email: `x-${randomSuffix()}@example.com`, password: 'Intruder-pass-1', role: 'ADMIN' } }],
        ['mutation($id: ID!) { updateUser(id: $id, input: { role: ADMIN }) { id } }', { id: operator.id }],
        ['{ limits { defaultMaxConcurrentJobs } }', {}],
        ['mutation { setDefaultJobLimit(max: 99) { defaultMaxConcurrentJobs } }', {}],
        ['mutation($u: ID!) { setUserJobLimit(userId: $u, max: 99) { defaultMaxConcurrentJobs } }', { u: operator.id }],
      ];
      for (const who of [operator, viewer]) {
        for (const [query, variables] of ops) {
          const res = await gql(query, variables, who.token);
          expect(res.errors?.[0]?.extensions?.code, `${query} as ${who.email}`).toBe('FORBIDDEN');
          expect(res.data ?? null).toBeNull();
        }
      }
      const limits = await gql('{ limits { defaultMaxConcurrentJobs overrides { userId } } }');
      expect(limits.data.limits.defaultMaxConcurrentJobs).toBe(4);
      expect((await gql('query($id: ID!) { user(id: $id) { role } }', { id: operator.id })).data.user.role).toBe('OPERATOR');
    });

    it('the User type has no password field', async () => {
      const res = await gql('{ __type(name: "User") { fields { name } } }');
      expect(res.data.__type.fields.map((f: { name: string }) => f.name).sort()).toEqual(['createdAt', 'effectiveMaxConcurrentJobs', 'email', 'id', 'isActive', 'maxConcurrentJobs', 'pendingJobs', 'role', 'runningJobs']);
    });

    it('a createUser call with a missing field is BAD_USER_INPUT and does not echo the password back', async () => {
      const password = `Echo-me-not-${randomSuffix()}`;
      secrets.add(password);
      const res = await gql('mutation($input: CreateUserInput!) { createUser(input: $input) { id } }', { input: { email: `echo-${randomSuffix()}@example.com`, password } });
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const badEnum = await gql('mutation($input: CreateUserInput!) { createUser(input: $input) { id } }', { input: { email: `echo-${randomSuffix()}@example.com`, password, role: 'ROOT' } });
      expect(badEnum.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });
  });
});
