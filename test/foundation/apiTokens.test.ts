// API tokens (issue #12): personal access tokens created with a password
// session, shown once, stored hashed, scoped (never wider than the owner's
// role), accepted as a Bearer on REST, GraphQL over HTTP and graphql-ws,
// listed with their last use, revocable, expiring.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { submit, waitTerminal } from '../helpers/jobs.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { JOB_UPDATED, track, withTimeout, wsClient, type WsClient } from '../helpers/ws.js';
import { ISO_UTC } from './support.js';
import { CREATED_TOKEN_KEYS, LISTED_TOKEN_KEYS, challenge, codes, createApiToken, detail422, type CreatedToken, type Scope } from './identitySupport.js';

type User = Awaited<ReturnType<TestServer['user']>>;

const DAY = 86_400_000;
const API_TOKEN_FIELDS = 'id name scopes createdAt expiresAt lastUsedAt';

describe.each(PROVIDERS)('API tokens on %s', (provider) => {
  let s: TestServer;
  let adminId: string;
  let op: User;
  let op2: User;
  let viewer: User;
  /** Every secret handed out in this file, to look for in the database. */
  const secrets: string[] = [];
  const open: WsClient[] = [];
  const connect = (token: string | null) => {
    const c = wsClient(s, token);
    open.push(c);
    return c;
  };

  async function mint(session: string, scopes: Scope[], extra: Record<string, unknown> = {}): Promise<CreatedToken> {
    const t = await createApiToken(s, session, scopes, extra);
    secrets.push(t.token);
    return t;
  }
  const list = (session: string, query = '') => s.request('GET', `/auth/tokens${query}`, { token: session });

  beforeAll(async () => {
    s = await startServer(provider);
    adminId = (await s.graphql('{ me { id } }')).data.me.id;
    [op, op2, viewer] = await Promise.all([s.user('operator'), s.user('operator'), s.user('viewer')]);
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.dispose()));
    await s?.stop();
  });

  describe('create and list', () => {
    it('POST /auth/tokens → 201 with the secret (jrt_…) shown once; the list never shows it', async () => {
      const before = Date.now();
      const res = await s.request('POST', '/auth/tokens', { token: op.token, body: { name: 'ci deploy', scopes: ['jobs:read', 'jobs:write'] } });
      expect(res.status, res.text).toBe(201);
      secrets.push(res.body.token);
      expect(Object.keys(res.body).sort()).toEqual(CREATED_TOKEN_KEYS);
      expect(res.body).toMatchObject({ name: 'ci deploy', id: expect.any(String) });
      expect([...res.body.scopes].sort()).toEqual(['jobs:read', 'jobs:write']);
      expect(res.body.token).toMatch(/^jrt_[A-Za-z0-9_-]{20,}$/);
      expect(res.body.created_at).toMatch(ISO_UTC);
      expect(res.body.expires_at).toMatch(ISO_UTC);
      // Default expiry: 30 days.
      const expires = Date.parse(res.body.expires_at);
      expect(expires).toBeGreaterThan(before + 29 * DAY);
      expect(expires).toBeLessThan(Date.now() + 31 * DAY);

      const listed = await list(op.token);
      expect(listed.status, listed.text).toBe(200);
      const entry = (listed.body as any[]).find((t) => t.id === res.body.id);
      expect(entry).toBeDefined();
      expect(Object.keys(entry).sort()).toEqual(LISTED_TOKEN_KEYS);
      expect(entry).toMatchObject({ name: 'ci deploy', created_at: res.body.created_at, expires_at: res.body.expires_at, last_used_at: null });
      expect(listed.text).not.toContain(res.body.token);
      expect(listed.text).not.toContain(res.body.token.slice(4));
    });

    it('expires_in_days sets the expiry; the list is newest first and holds only the caller\'s tokens', async () => {
      const me = await s.user('operator');
      const a = await mint(me.token, ['jobs:read'], { expires_in_days: 1 });
      const b = await mint(me.token, ['batches:read'], { expires_in_days: 365 });
      const c = await mint(me.token, ['batches:write'], { expires_in_days: 7 });
      expect(Date.parse(a.expires_at) - Date.parse(a.created_at)).toBeGreaterThan(DAY - 60_000);
      expect(Date.parse(a.expires_at) - Date.parse(a.created_at)).toBeLessThan(DAY + 60_000);
      expect(Date.parse(b.expires_at) - Date.parse(b.created_at)).toBeGreaterThan(365 * DAY - 60_000);
      expect(Date.parse(c.expires_at) - Date.parse(c.created_at)).toBeLessThan(7 * DAY + 60_000);
      await mint(op2.token, ['jobs:read']);
      const res = await list(me.token);
      expect(res.status).toBe(200);
      expect((res.body as any[]).map((t) => t.id)).toEqual([c.id, b.id, a.id]);
      expect((res.body as any[]).map((t) => t.scopes)).toEqual([['batches:write'], ['batches:read'], ['jobs:read']]);
    });

    it('an admin lists another user\'s tokens with ?user_id=; anyone else gets 403 for another user_id', async () => {
      const me = await s.user('operator');
      const t = await mint(me.token, ['jobs:read']);
      const mine = await mint(s.adminToken, ['admin']);

      const asAdmin = await list(s.adminToken, `?user_id=${me.id}`);
      expect(asAdmin.status, asAdmin.text).toBe(200);
      expect((asAdmin.body as any[]).map((x) => x.id)).toEqual([t.id]);
      expect(asAdmin.text).not.toContain(t.token);

      const adminOwn = await list(s.adminToken);
      expect((adminOwn.body as any[]).map((x) => x.id)).toContain(mine.id);
      expect((adminOwn.body as any[]).map((x) => x.id)).not.toContain(t.id);

      const forbidden = await list(op2.token, `?user_id=${me.id}`);
      expect(forbidden.status, forbidden.text).toBe(403);
      expect(forbidden.text).not.toContain(t.id);
      expect((await list(viewer.token, `?user_id=${adminId}`)).status).toBe(403);
    });

    it('an admin creates a token for another user (scopes checked against that user\'s role)', async () => {
      const target = await s.user('operator');
      const ok = await s.request('POST', '/auth/tokens', { token: s.adminToken, body: { name: 'for op', scopes: ['jobs:write'], user_id: target.id } });
      expect(ok.status, ok.text).toBe(201);
      secrets.push(ok.body.token);
      const me = await s.graphql('{ me { id role } }', {}, ok.body.token);
      expect(me.data?.me, JSON.stringify(me)).toEqual({ id: target.id, role: 'OPERATOR' });
      expect(((await list(target.token)).body as any[]).map((x) => x.id)).toContain(ok.body.id);

      const tooWide = await s.request('POST', '/auth/tokens', { token: s.adminToken, body: { name: 'x', scopes: ['admin'], user_id: target.id } });
      const issues = detail422(tooWide, 'admin scope for an operator');
      expect(issues.some((i) => i.loc[0] === 'body' && i.loc[1] === 'scopes' && i.msg.includes('admin'))).toBe(true);
      const forViewer = await s.request('POST', '/auth/tokens', { token: s.adminToken, body: { name: 'x', scopes: ['jobs:write'], user_id: viewer.id } });
      expect(detail422(forViewer, 'jobs:write for a viewer').some((i) => i.msg.includes('jobs:write'))).toBe(true);
    });
  });

  describe('use', () => {
    it('is accepted as a Bearer on REST, GraphQL over HTTP and graphql-ws, as its owner', async () => {
      const t = await mint(op.token, ['jobs:read', 'jobs:write']);
      const job = await submit(s, t.token, { command: ['true'] });
      expect(job.owner_id).toBe(op.id);
      await waitTerminal(s, t.token, job.id);
      const jobs = await s.request('GET', '/jobs', { token: t.token });
      expect(jobs.status).toBe(200);
      expect((jobs.body as any[]).map((j) => j.id)).toContain(job.id);

      const me = await s.graphql('{ me { id email role } }', {}, t.token);
      expect(me.errors).toBeUndefined();
      expect(me.data.me).toEqual({ id: op.id, email: op.email, role: 'OPERATOR' });
      const gqlJob = await s.graphql('query ($id: ID!) { job(id: $id) { id status } }', { id: job.id }, t.token);
      expect(gqlJob.data?.job, JSON.stringify(gqlJob)).toEqual({ id: job.id, status: 'SUCCESS' });

      const c = connect(t.token);
      const query = track<{ id: string }>(c.client, '{ me { id } }', {});
      expect(await withTimeout(query.done, 10_000, 'me over ws')).toBe('complete');
      expect(query.values).toEqual([{ id: op.id }]);
      const updates = track<{ id: string; status: string }>(c.client, JOB_UPDATED, { id: job.id });
      expect(await withTimeout(updates.done, 10_000, 'jobUpdated over ws')).toBe('complete');
      expect(updates.errors).toEqual([]);
      expect(updates.values).toEqual([{ id: job.id, status: 'SUCCESS', exitCode: 0 }]);
    });

    it('scopes narrow: jobs:read reads jobs only; jobs:write also reads; batches and admin need their own scopes', async () => {
      const read = await mint(op.token, ['jobs:read']);
      expect((await s.request('GET', '/jobs', { token: read.token })).status).toBe(200);
      expect((await s.request('GET', '/jobs/stats', { token: read.token })).status).toBe(200);
      const post = await s.request('POST', '/jobs', { token: read.token, body: { name: 'no', command: ['true'] } });
      expect(post.status, post.text).toBe(403);
      expect(post.body).toEqual({ detail: expect.any(String) });
      expect((await s.request('GET', '/job-batches', { token: read.token })).status).toBe(403);
      expect((await s.request('POST', '/job-batches', { token: read.token, body: { name: 'b', jobs: [{ name: 'j', command: ['true'] }] } })).status).toBe(403);
      const gqlSubmit = await s.graphql('mutation { submitJob(input: {name: "no", command: ["true"]}) { id } }', {}, read.token);
      expect(codes(gqlSubmit)).toEqual(['FORBIDDEN']);
      const gqlBatches = await s.graphql('{ batches { nodes { id } } }', {}, read.token);
      expect(codes(gqlBatches)).toEqual(['FORBIDDEN']);
      // Nothing was submitted by the refused calls.
      const mine = await s.request('GET', '/jobs', { token: op.token });
      expect((mine.body as any[]).some((j) => j.name === 'no')).toBe(false);

      const write = await mint(op.token, ['jobs:write']);
      expect((await s.request('GET', '/jobs', { token: write.token })).status).toBe(200);
      const job = await submit(s, write.token, { command: ['true'] });
      await waitTerminal(s, write.token, job.id);
      expect((await s.request('GET', '/job-batches', { token: write.token })).status).toBe(403);

      const batches = await mint(op.token, ['batches:write']);
      expect((await s.request('GET', '/job-batches', { token: batches.token })).status).toBe(200);
      expect((await s.request('GET', '/jobs', { token: batches.token })).status).toBe(403);

      // `admin` covers admin-only actions, not jobs:*.
      const admin = await mint(s.adminToken, ['admin']);
      expect((await s.request('GET', '/users', { token: admin.token })).status).toBe(200);
      expect((await s.request('GET', '/admin/limits', { token: admin.token })).status).toBe(200);
      expect((await s.request('GET', '/jobs', { token: admin.token })).status).toBe(403);
      // An admin's jobs-only token cannot manage users.
      const adminJobs = await mint(s.adminToken, ['jobs:read']);
      expect((await s.request('GET', '/users', { token: adminJobs.token })).status).toBe(403);
      expect((await s.request('GET', '/jobs', { token: adminJobs.token })).status).toBe(200);
    });

    it('a viewer may hold a jobs:read + batches:read token', async () => {
      const t = await mint(viewer.token, ['jobs:read', 'batches:read']);
      expect((await s.request('GET', '/jobs', { token: t.token })).status).toBe(200);
      expect((await s.request('GET', '/job-batches', { token: t.token })).status).toBe(200);
      expect((await s.request('POST', '/jobs', { token: t.token, body: { name: 'no', command: ['true'] } })).status).toBe(403);
    });

    it('last_used_at is set once the token has been used', async () => {
      const t = await mint(op.token, ['jobs:read']);
      const before = ((await list(op.token)).body as any[]).find((x) => x.id === t.id);
      expect(before.last_used_at).toBeNull();
      const used = Date.now();
      expect((await s.request('GET', '/jobs', { token: t.token })).status).toBe(200);
      const after = await waitFor(async () => {
        const entry = ((await list(op.token)).body as any[]).find((x) => x.id === t.id);
        return entry?.last_used_at && entry;
      }, 5_000);
      expect(after.last_used_at).toMatch(ISO_UTC);
      expect(Date.parse(after.last_used_at)).toBeGreaterThanOrEqual(Date.parse(t.created_at));
      expect(Date.parse(after.last_used_at)).toBeGreaterThan(used - 5_000);
      expect(Date.parse(after.last_used_at)).toBeLessThanOrEqual(Date.now() + 1_000);
    });
  });

  describe('refused', () => {
    it('scopes wider than the role → 422 naming them', async () => {
      const viewerAsks = await s.request('POST', '/auth/tokens', { token: viewer.token, body: { name: 'x', scopes: ['jobs:read', 'jobs:write'] } });
      const vIssues = detail422(viewerAsks, 'viewer asks jobs:write');
      expect(vIssues).toContainEqual(expect.objectContaining({ loc: ['body', 'scopes'] }));
      const vMsg = vIssues.map((i) => i.msg).join(' | ');
      expect(vMsg).toContain('jobs:write');
      expect(vMsg).not.toContain('jobs:read');

      const opAsks = await s.request('POST', '/auth/tokens', { token: op.token, body: { name: 'x', scopes: ['admin', 'batches:write'] } });
      const oIssues = detail422(opAsks, 'operator asks admin');
      expect(oIssues).toContainEqual(expect.objectContaining({ loc: ['body', 'scopes'] }));
      expect(oIssues.map((i) => i.msg).join(' | ')).toMatch(/\badmin\b/);

      const viewerBatches = await s.request('POST', '/auth/tokens', { token: viewer.token, body: { name: 'x', scopes: ['batches:write'] } });
      expect(detail422(viewerBatches, 'viewer asks batches:write').map((i) => i.msg).join(' ')).toContain('batches:write');
      // None of them was created.
      expect(((await list(viewer.token)).body as any[]).some((t) => t.name === 'x')).toBe(false);
      expect(((await list(op.token)).body as any[]).some((t) => t.name === 'x')).toBe(false);
    });

    it('bad input → 422 at the field: empty or long name, no/unknown/repeated scopes, expires_in_days outside 1..365', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ name: '', scopes: ['jobs:read'] }, 'name'],
        [{ name: 'x'.repeat(101), scopes: ['jobs:read'] }, 'name'],
        [{ scopes: ['jobs:read'] }, 'name'],
        [{ name: 'x', scopes: [] }, 'scopes'],
        [{ name: 'x' }, 'scopes'],
        [{ name: 'x', scopes: ['jobs:delete'] }, 'scopes'],
        [{ name: 'x', scopes: ['jobs:read', 'jobs:read'] }, 'scopes'],
        [{ name: 'x', scopes: 'jobs:read' }, 'scopes'],
        [{ name: 'x', scopes: ['jobs:read'], expires_in_days: 0 }, 'expires_in_days'],
        [{ name: 'x', scopes: ['jobs:read'], expires_in_days: 366 }, 'expires_in_days'],
        [{ name: 'x', scopes: ['jobs:read'], expires_in_days: -1 }, 'expires_in_days'],
        [{ name: 'x', scopes: ['jobs:read'], expires_in_days: 1.5 }, 'expires_in_days'],
        [{ name: 'x', scopes: ['jobs:read'], expires_in_days: '30' }, 'expires_in_days'],
      ];
      for (const [body, field] of cases) {
        const issues = detail422(await s.request('POST', '/auth/tokens', { token: op.token, body }), JSON.stringify(body));
        expect(issues.map((i) => i.loc.slice(0, 2)), JSON.stringify(body)).toContainEqual(['body', field]);
      }
      const max = await s.request('POST', '/auth/tokens', { token: op.token, body: { name: 'x'.repeat(100), scopes: ['jobs:read', 'jobs:write', 'batches:read', 'batches:write'], expires_in_days: 365 } });
      expect(max.status, max.text).toBe(201);
      secrets.push(max.body.token);
    });

    it('an API token cannot create, list or revoke tokens, nor change its owner\'s account (403)', async () => {
      const t = await mint(op.token, ['jobs:read', 'jobs:write', 'batches:read', 'batches:write']);
      const create = await s.request('POST', '/auth/tokens', { token: t.token, body: { name: 'child', scopes: ['jobs:read'] } });
      expect(create.status, create.text).toBe(403);
      expect(create.text).not.toMatch(/jrt_/);
      expect((await list(t.token)).status).toBe(403);
      expect((await s.request('DELETE', `/auth/tokens/${t.id}`, { token: t.token })).status).toBe(403);
      const patch = await s.request('PATCH', '/users/me', { token: t.token, body: { current_password: op.password, password: 'Another-pass-1' } });
      expect(patch.status, patch.text).toBe(403);
      // The token is still there and works; the password did not change.
      expect((await s.request('GET', '/jobs', { token: t.token })).status).toBe(200);
      expect(await s.token(op.email, op.password)).toEqual(expect.any(String));
      expect(((await list(op.token)).body as any[]).some((x) => x.name === 'child')).toBe(false);

      const admin = await mint(s.adminToken, ['admin']);
      expect((await s.request('POST', '/auth/tokens', { token: admin.token, body: { name: 'child', scopes: ['admin'] } })).status).toBe(403);
      expect((await s.request('GET', `/auth/tokens?user_id=${op.id}`, { token: admin.token })).status).toBe(403);

      const gql = await s.graphql('mutation { createApiToken(input: {name: "child", scopes: [JOBS_READ]}) { token } }', {}, t.token);
      expect(codes(gql)).toEqual(['FORBIDDEN']);
      expect(codes(await s.graphql('{ apiTokens { id } }', {}, t.token))).toEqual(['FORBIDDEN']);
    });
  });

  describe('revoke and expiry', () => {
    it('DELETE /auth/tokens/{id} → 204; the token then gets 401 "token revoked" everywhere and leaves the list', async () => {
      const t = await mint(op.token, ['jobs:read']);
      expect((await s.request('GET', '/jobs', { token: t.token })).status).toBe(200);
      const del = await s.request('DELETE', `/auth/tokens/${t.id}`, { token: op.token });
      expect(del.status, del.text).toBe(204);
      expect(del.text).toBe('');

      const after = await s.request('GET', '/jobs', { token: t.token });
      expect(after.status).toBe(401);
      expect(after.headers.get('www-authenticate')).toBe(challenge('token revoked'));
      expect(codes(await s.graphql('{ me { id } }', {}, t.token))).toEqual(['UNAUTHENTICATED']);
      const c = connect(t.token);
      expect((await withTimeout(c.closed, 10_000, 'revoked token socket')).code).toBe(4403);

      expect(((await list(op.token)).body as any[]).map((x) => x.id)).not.toContain(t.id);
      // The session that revoked it is unaffected.
      expect((await s.request('GET', '/jobs', { token: op.token })).status).toBe(200);
    });

    it('someone else\'s token or an unknown id → 404 and nothing revoked; an admin may revoke anyone\'s', async () => {
      const theirs = await mint(op2.token, ['jobs:read']);
      const byOther = await s.request('DELETE', `/auth/tokens/${theirs.id}`, { token: op.token });
      expect(byOther.status, byOther.text).toBe(404);
      expect((await s.request('DELETE', `/auth/tokens/${theirs.id}`, { token: viewer.token })).status).toBe(404);
      expect((await s.request('DELETE', '/auth/tokens/00000000-0000-4000-8000-000000000000', { token: op.token })).status).toBe(404);
      expect((await s.request('DELETE', '/auth/tokens/not-an-id', { token: op.token })).status).toBe(404);
      expect((await s.request('GET', '/jobs', { token: theirs.token })).status).toBe(200);

      const byAdmin = await s.request('DELETE', `/auth/tokens/${theirs.id}`, { token: s.adminToken });
      expect(byAdmin.status, byAdmin.text).toBe(204);
      const after = await s.request('GET', '/jobs', { token: theirs.token });
      expect(after.status).toBe(401);
      expect(after.headers.get('www-authenticate')).toBe(challenge('token revoked'));
    });

    it('an expired token → 401 with error_description="token expired"', async () => {
      const t = await mint(op.token, ['jobs:read'], { expires_in_days: 1 });
      // Its expiry moved into the past before its first use.
      await s.app.db.prisma.apiToken.update({ where: { id: t.id }, data: { expiresAt: new Date(Date.now() - 60_000) } });
      const res = await s.request('GET', '/jobs', { token: t.token });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ detail: expect.any(String) });
      expect(res.headers.get('www-authenticate')).toBe(challenge('token expired'));
      expect(codes(await s.graphql('{ me { id } }', {}, t.token))).toEqual(['UNAUTHENTICATED']);
    });

    it('a token follows its owner: deactivated → 401 "token revoked"; an admin demoted to operator loses the admin scope (403)', async () => {
      const owner = await s.user('operator');
      const t = await mint(owner.token, ['jobs:read']);
      expect((await s.request('GET', '/jobs', { token: t.token })).status).toBe(200);
      expect((await s.request('PATCH', `/users/${owner.id}`, { token: s.adminToken, body: { is_active: false } })).status).toBe(200);
      const off = await s.request('GET', '/jobs', { token: t.token });
      expect(off.status).toBe(401);
      expect(off.headers.get('www-authenticate')).toBe(challenge('token revoked'));

      const boss = await s.user('admin');
      const a = await mint(boss.token, ['admin', 'jobs:read']);
      expect((await s.request('GET', '/users', { token: a.token })).status).toBe(200);
      expect((await s.request('PATCH', `/users/${boss.id}`, { token: s.adminToken, body: { role: 'operator' } })).status).toBe(200);
      expect((await s.request('GET', '/users', { token: a.token })).status).toBe(403);
      expect((await s.request('GET', '/jobs', { token: a.token })).status).toBe(200);
    });
  });

  it('the database keeps no plaintext secret (only a hash)', async () => {
    const rows = await s.app.db.prisma.apiToken.findMany();
    expect(rows.length).toBeGreaterThanOrEqual(secrets.length);
    const dump = JSON.stringify(rows);
    expect(secrets.length).toBeGreaterThan(5);
    for (const secret of secrets) {
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(secret.slice(4));
    }
  });

  describe('GraphQL', () => {
    it('createApiToken, apiTokens, revokeApiToken', async () => {
      const created = await s.graphql(
        `mutation { createApiToken(input: {name: "gql", scopes: [JOBS_READ, BATCHES_READ], expiresInDays: 3}) { token apiToken { ${API_TOKEN_FIELDS} } } }`,
        {},
        op.token,
      );
      expect(created.errors, JSON.stringify(created.errors)).toBeUndefined();
      const { token, apiToken } = created.data.createApiToken;
      secrets.push(token);
      expect(token).toMatch(/^jrt_/);
      expect(apiToken).toMatchObject({ name: 'gql', lastUsedAt: null });
      expect([...apiToken.scopes].sort()).toEqual(['BATCHES_READ', 'JOBS_READ']);
      expect(Date.parse(apiToken.expiresAt) - Date.parse(apiToken.createdAt)).toBeGreaterThan(3 * DAY - 60_000);
      expect(Date.parse(apiToken.expiresAt) - Date.parse(apiToken.createdAt)).toBeLessThan(3 * DAY + 60_000);

      // Usable, and the REST list shows the same token.
      expect((await s.request('GET', '/job-batches', { token })).status).toBe(200);
      expect(((await list(op.token)).body as any[]).map((x) => x.id)).toContain(apiToken.id);

      const listed = await s.graphql(`{ apiTokens { ${API_TOKEN_FIELDS} } }`, {}, op.token);
      expect(listed.errors).toBeUndefined();
      expect(listed.data.apiTokens[0].id).toBe(apiToken.id);
      expect(JSON.stringify(listed)).not.toContain(token);
      // ApiToken has no field for the secret.
      const secretField = await s.graphql('{ apiTokens { id token } }', {}, op.token);
      expect(secretField.errors?.length).toBeGreaterThan(0);
      expect(secretField.data ?? null).toBeNull();

      const byAdmin = await s.graphql('query ($u: ID) { apiTokens(userId: $u) { id } }', { u: op.id }, s.adminToken);
      expect(byAdmin.data?.apiTokens.map((t: { id: string }) => t.id)).toContain(apiToken.id);
      expect(codes(await s.graphql('query ($u: ID) { apiTokens(userId: $u) { id } }', { u: op.id }, op2.token))).toEqual(['FORBIDDEN']);

      const tooWide = await s.graphql('mutation { createApiToken(input: {name: "w", scopes: [ADMIN]}) { token } }', {}, op.token);
      expect(codes(tooWide)).toEqual(['BAD_USER_INPUT']);
      expect(tooWide.errors![0].message + JSON.stringify(tooWide.errors![0].extensions)).toMatch(/admin|ADMIN/);

      expect(codes(await s.graphql('mutation ($id: ID!) { revokeApiToken(id: $id) }', { id: apiToken.id }, op2.token))).toEqual(['NOT_FOUND']);
      const revoked = await s.graphql('mutation ($id: ID!) { revokeApiToken(id: $id) }', { id: apiToken.id }, op.token);
      expect(revoked).toEqual({ data: { revokeApiToken: true } });
      const after = await s.request('GET', '/job-batches', { token });
      expect(after.status).toBe(401);
      expect(after.headers.get('www-authenticate')).toBe(challenge('token revoked'));
      const again = await s.graphql(`{ apiTokens { id } }`, {}, op.token);
      expect(again.data.apiTokens.map((t: { id: string }) => t.id)).not.toContain(apiToken.id);
    });
  });
});
