// Revocation (issue #12), tried as an attacker holding a token would try it:
// after a password change, deactivation, role change, "log out everywhere" or
// an admin's "revoke sessions", every password session (JWT) of that user is
// refused on REST (401, RFC 6750 "token revoked"), GraphQL (UNAUTHENTICATED)
// and new graphql-ws connections (4403), and the sockets already open are
// closed 4403. Logout ends one session; a self-service password change keeps
// the session that made it. API tokens outlive a password change but not
// their owner's deactivation, and carry their owner's current role.
// Open streams (graphql-ws, GraphQL over SSE, the REST log stream) of a user
// who loses access stop delivering: the two subscription cases of the issue.
//
// On the code before the revocation work (e.g. 838f032) these fail: a token
// stayed valid across password and role changes, logout did not exist, open
// subscriptions kept delivering. Where a route or field is new (logout,
// logout-all, revoke-sessions, /users/me, API tokens), the old code cannot
// even express the call: it answers 404 (REST) or a validation error
// (GraphQL), and the test fails on that.
import { decodeJwt, SignJWT } from 'jose';
import type WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, PROVIDERS, type TestDatabase } from '../helpers/db.js';
import { freePort, spawnServer, submit, waitTerminal, type SpawnedServer } from '../helpers/jobs.js';
import { graphqlSse, nextResults, openStream, type StreamReader } from '../helpers/sse.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startServer, testServerEnv, waitFor, type TestServer } from '../helpers/server.js';
import { JOB_LOG, track, withTimeout, wsClient, type Chunk, type Tracked, type WsClient } from '../helpers/ws.js';

type User = Awaited<ReturnType<TestServer['user']>>;
/** A server the tests talk to: the in-process one, or one in a child process. */
type Target = Pick<TestServer, 'url' | 'request' | 'adminToken' | 'user'>;

/** A job that prints a line every 100 ms until canceled (or its timeout). */
const TICK = ['sh', '-c', 'while :; do echo tick; sleep 0.1; done'];
/** What the attacker must never see of the victim's job. */
const SECRET_ENV = { SECRET: 'hunter2' };
const SECRET_COMMAND = ['sh', '-c', 'echo private-output; echo "$SECRET"'];
/** jobEvents as an attacker asks for it: everything, env and output included (two operations: `logs` errors while a job runs). */
const EVENTS_WITH_ENV = 'subscription { jobEvents { id status ownerId env command } }';
const EVENTS_WITH_LOGS = 'subscription { jobEvents { id status logs { stdout stderr } } }';
const ME = '{ me { id email role } }';
/** How long an open stream may take to be cut (the contract says ~1 s in one process). */
const CUT_BOUND_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codes = (r: { errors?: any[] }) => (r.errors ?? []).map((e) => e.extensions?.code);

describe.each(PROVIDERS)('revocation on %s', (provider) => {
  let s: TestServer;
  const sockets: WsClient[] = [];
  const streams: StreamReader[] = [];

  const connect = (token: string | null) => {
    const c = wsClient(s, token);
    sockets.push(c);
    return c;
  };

  beforeAll(async () => {
    s = await startServer(provider);
  });
  afterAll(async () => {
    for (const r of streams) r.abort();
    await Promise.all(sockets.map((c) => c.dispose()));
    await s?.stop();
  });

  const asAdmin = (method: string, path: string, body?: unknown, t: Target = s) => t.request(method, path, { token: t.adminToken, body });
  const patchUser = async (id: string, body: Record<string, unknown>, t: Target = s) => {
    const res = await asAdmin('PATCH', `/users/${id}`, body, t);
    expect(res.status, `PATCH /users/${id} ${JSON.stringify(body)}: ${res.text}`).toBe(200);
  };
  /** A login with the password form; the raw answer (no throw). */
  const login = (email: string, password: string) =>
    fetch(`${s.api}/auth/token`, { method: 'POST', body: new URLSearchParams({ username: email, password }) });

  /** What a new graphql-ws connection with `token` gets: 'open' (acknowledged) or the close code. */
  async function wsOutcome(token: string): Promise<'open' | number> {
    const c = wsClient(s, token);
    try {
      return await withTimeout(Promise.race([c.socket.then(() => 'open' as const), c.closed.then((x) => x.code)]), 10_000, 'graphql-ws connection');
    } finally {
      await c.dispose();
    }
  }

  /** A connected socket with a long-lived subscription on it (an open stream of that session). */
  async function openSocket(token: string): Promise<{ c: WsClient; ws: WebSocket; sub: Tracked<unknown> }> {
    const c = connect(token);
    const ws = await withTimeout(c.socket, 10_000, 'graphql-ws connection');
    const sub = track(c.client, 'subscription { jobEvents { id status } }', {});
    return { c, ws, sub };
  }

  async function expectWorks(token: string, userId: string, what: string) {
    const rest = await s.request('GET', '/jobs', { token });
    expect(rest.status, `${what}: REST GET /jobs: ${rest.text}`).toBe(200);
    const gql = await s.graphql(ME, {}, token);
    expect(gql.errors, `${what}: GraphQL me`).toBeUndefined();
    expect(gql.data.me.id, `${what}: GraphQL me`).toBe(userId);
    expect(await wsOutcome(token), `${what}: graphql-ws`).toBe('open');
  }

  async function expectRefused(token: string, why: 'token revoked' | 'token expired' | 'malformed token', what: string) {
    const rest = await s.request('GET', '/jobs', { token });
    expect(rest.status, `${what}: REST GET /jobs: ${rest.text}`).toBe(401);
    const challenge = rest.headers.get('www-authenticate') ?? '';
    expect(challenge, `${what}: WWW-Authenticate`).toContain('error="invalid_token"');
    expect(challenge, `${what}: WWW-Authenticate`).toContain(`error_description="${why}"`);
    const gql = await s.graphql(ME, {}, token);
    expect(gql.data?.me ?? null, `${what}: GraphQL me`).toBeNull();
    expect(codes(gql), `${what}: GraphQL me`).toContain('UNAUTHENTICATED');
    expect(await wsOutcome(token), `${what}: graphql-ws`).toBe(4403);
  }
  const expectRevoked = (token: string, what: string) => expectRefused(token, 'token revoked', what);

  async function expectClosed4403(sock: { c: WsClient }, what: string) {
    const closed = await withTimeout(sock.c.closed, CUT_BOUND_MS, `${what}: the open socket closing`);
    expect(closed.code, `${what}: close code (${closed.reason})`).toBe(4403);
  }

  async function createApiToken(session: string, scopes: string[]): Promise<{ id: string; token: string }> {
    // New in #12: the old code answers 404 here.
    const res = await s.request('POST', '/auth/tokens', { token: session, body: { name: `rev-${Math.random().toString(36).slice(2, 8)}`, scopes } });
    expect(res.status, `POST /auth/tokens: ${res.text}`).toBe(201);
    expect(res.body.token).toMatch(/^jrt_/);
    return res.body;
  }

  /** Cleanup; bounded, should the server not answer. */
  async function cancel(jobId: string, t: Target = s) {
    await fetch(`${t.url}/api/v1/jobs/${jobId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, signal: AbortSignal.timeout(5_000) }).catch(() => {});
  }

  // ---- every password session of the user, at once ----------------------

  const TRIGGERS: [string, (u: User, sessions: string[]) => Promise<void>][] = [
    ['an admin changes the password', (u) => patchUser(u.id, { password: 'Changed-by-admin-1' })],
    ['the user is deactivated', (u) => patchUser(u.id, { is_active: false })],
    ['the role changes', (u) => patchUser(u.id, { role: 'viewer' })],
    [
      'the user logs out everywhere (POST /auth/logout-all)',
      async (_u, sessions) => {
        // New route: the old code answers 404.
        const res = await s.request('POST', '/auth/logout-all', { token: sessions[0]! });
        expect(res.status, res.text).toBe(204);
      },
    ],
    [
      'an admin revokes the sessions (POST /users/{id}/revoke-sessions)',
      async (u) => {
        // New route: the old code answers 404.
        const res = await asAdmin('POST', `/users/${u.id}/revoke-sessions`);
        expect(res.status, res.text).toBe(204);
      },
    ],
  ];

  it.each(TRIGGERS)('after %s, every session token of the user is refused: REST 401 "token revoked", GraphQL UNAUTHENTICATED, graphql-ws 4403; open sockets are closed 4403', async (_name, act) => {
    const u = await s.user('operator');
    const second = await s.token(u.email, u.password);
    await expectWorks(u.token, u.id, 'first session before');
    await expectWorks(second, u.id, 'second session before');
    const open = [await openSocket(u.token), await openSocket(second)];

    await act(u, [u.token, second]);

    await expectClosed4403(open[0]!, 'first session');
    await expectClosed4403(open[1]!, 'second session');
    await expectRevoked(u.token, 'first session after');
    await expectRevoked(second, 'second session after');
  });

  it('a deactivated user made active again does not get the old sessions back; a new login works', async () => {
    const u = await s.user('operator');
    await patchUser(u.id, { is_active: false });
    await expectRevoked(u.token, 'while deactivated');
    await patchUser(u.id, { is_active: true });
    // A stolen token must not come back to life with its owner.
    await expectRevoked(u.token, 'after reactivation');
    const fresh = await s.token(u.email, u.password);
    await expectWorks(fresh, u.id, 'new login after reactivation');
  });

  it('after a role change, a new login works with the new role', async () => {
    const u = await s.user('operator');
    await patchUser(u.id, { role: 'viewer' });
    await expectRevoked(u.token, 'old session');
    const fresh = await s.token(u.email, u.password);
    const me = await s.graphql(ME, {}, fresh);
    expect(me.data.me).toMatchObject({ id: u.id, role: 'VIEWER' });
    const submitted = await s.request('POST', '/jobs', { token: fresh, body: { name: 'x', command: ['true'] } });
    expect(submitted.status, submitted.text).toBe(403);
  });

  it('POST /users/{id}/revoke-sessions: admins only (403 for others), 404 for an unknown user', async () => {
    // New route: the old code answers 404 to all of these.
    const u = await s.user('operator');
    const bystander = await s.user('operator');
    const byOperator = await s.request('POST', `/users/${bystander.id}/revoke-sessions`, { token: u.token });
    expect(byOperator.status, byOperator.text).toBe(403);
    await expectWorks(bystander.token, bystander.id, 'the bystander after a refused revoke');
    const unknown = await asAdmin('POST', '/users/0190a5c1-0000-7000-8000-000000000000/revoke-sessions');
    expect(unknown.status, unknown.text).toBe(404);
    const ok = await asAdmin('POST', `/users/${bystander.id}/revoke-sessions`);
    expect(ok.status, ok.text).toBe(204);
    await expectRevoked(bystander.token, 'the bystander after the revoke');
  });

  // ---- one session ------------------------------------------------------

  it('POST /auth/logout ends only that session: the other session of the same user keeps working, its socket stays open', async () => {
    const u = await s.user('operator');
    const second = await s.token(u.email, u.password);
    const mine = await openSocket(u.token);
    const theirs = await openSocket(second);

    // New route: the old code answers 404.
    const res = await s.request('POST', '/auth/logout', { token: u.token });
    expect(res.status, res.text).toBe(204);

    await expectClosed4403(mine, 'the logged-out session');
    await expectRevoked(u.token, 'the logged-out session');
    await expectWorks(second, u.id, 'the other session');
    await sleep(500);
    expect(theirs.ws.readyState, 'the other session\'s socket').toBe(1 /* OPEN */);
    expect(theirs.sub.isDone()).toBe(false);

    // A logged-out token cannot log out again.
    const again = await s.request('POST', '/auth/logout', { token: u.token });
    expect(again.status).toBe(401);
  });

  it('GraphQL logout, logoutAll and revokeSessions do what the REST routes do', async () => {
    // New fields: the old schema refuses these documents (GRAPHQL_VALIDATION_FAILED).
    const u = await s.user('operator');
    const [b, c] = [await s.token(u.email, u.password), await s.token(u.email, u.password)];
    const out = await s.graphql('mutation { logout }', {}, u.token);
    expect(out.errors).toBeUndefined();
    expect(out.data.logout).toBe(true);
    await expectRevoked(u.token, 'after logout');
    await expectWorks(b, u.id, 'another session after logout');

    const all = await s.graphql('mutation { logoutAll }', {}, b);
    expect(all.errors).toBeUndefined();
    expect(all.data.logoutAll).toBe(true);
    await expectRevoked(b, 'after logoutAll');
    await expectRevoked(c, 'another session after logoutAll');

    const d = await s.token(u.email, u.password);
    const denied = await s.graphql('mutation ($id: ID!) { revokeSessions(userId: $id) }', { id: u.id }, d);
    expect(codes(denied)).toContain('FORBIDDEN');
    await expectWorks(d, u.id, 'after a refused revokeSessions');
    const revoked = await s.graphql('mutation ($id: ID!) { revokeSessions(userId: $id) }', { id: u.id });
    expect(revoked.errors).toBeUndefined();
    expect(revoked.data.revokeSessions).toBe(true);
    await expectRevoked(d, 'after revokeSessions');
  });

  it('PATCH /users/me keeps the session that changed the password and revokes the others; the new password logs in, the old one no longer', async () => {
    const u = await s.user('operator');
    const other = await s.token(u.email, u.password);
    const mine = await openSocket(u.token);
    const theirs = await openSocket(other);

    // New route: the old code answers 403 (PATCH /users/{id} is admin-only, "me" is no id).
    const res = await s.request('PATCH', '/users/me', { token: u.token, body: { current_password: u.password, password: 'Self-chosen-pass-2' } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.id).toBe(u.id);

    await expectClosed4403(theirs, 'the other session');
    await expectRevoked(other, 'the other session');
    await expectWorks(u.token, u.id, 'the session that made the change');
    expect(mine.ws.readyState, 'the socket of the session that made the change').toBe(1 /* OPEN */);

    const fresh = await s.token(u.email, 'Self-chosen-pass-2');
    await expectWorks(fresh, u.id, 'a login with the new password');
    // One wrong password: well under the throttle.
    expect((await login(u.email, u.password)).status).toBe(401);
  });

  // ---- API tokens ---------------------------------------------------------

  it('an API token survives its owner\'s password changes, cannot log out, and is refused ("token revoked") once the owner is deactivated', async () => {
    const u = await s.user('operator');
    const api = await createApiToken(u.token, ['jobs:read', 'jobs:write']);
    await expectWorks(api.token, u.id, 'the API token before');

    await patchUser(u.id, { password: 'Changed-by-admin-2' });
    await expectRevoked(u.token, 'the password session after the admin changed the password');
    await expectWorks(api.token, u.id, 'the API token after the admin changed the password');

    const fresh = await s.token(u.email, 'Changed-by-admin-2');
    const self = await s.request('PATCH', '/users/me', { token: fresh, body: { current_password: 'Changed-by-admin-2', password: 'Self-chosen-pass-3' } });
    expect(self.status, self.text).toBe(200);
    await expectWorks(api.token, u.id, 'the API token after a self-service password change');

    // An API token is not a session: logging it out is refused.
    for (const path of ['/auth/logout', '/auth/logout-all']) {
      const res = await s.request('POST', path, { token: api.token });
      expect(res.status, `${path} with an API token: ${res.text}`).toBe(403);
    }
    await expectWorks(api.token, u.id, 'the API token after refused logouts');

    const sock = await openSocket(api.token);
    await patchUser(u.id, { is_active: false });
    await expectClosed4403(sock, 'the API token\'s socket');
    await expectRevoked(api.token, 'the API token of a deactivated owner');
  });

  it('an admin-scoped API token of an admin demoted to operator gets 403 on admin routes', async () => {
    const a = await s.user('admin');
    const api = await createApiToken(a.token, ['admin']);
    const before = await s.request('GET', '/users', { token: api.token });
    expect(before.status, before.text).toBe(200);

    await patchUser(a.id, { role: 'operator' });

    const after = await s.request('GET', '/users', { token: api.token });
    expect(after.status, after.text).toBe(403);
    const limits = await s.request('POST', '/admin/limits/global', { token: api.token, body: { max_concurrent_jobs: 100 } });
    expect(limits.status, limits.text).toBe(403);
    const gql = await s.graphql('{ users { id } }', {}, api.token);
    expect(codes(gql)).toContain('FORBIDDEN');
  });

  // ---- open streams: the two subscription cases ------------------

  /** The case (a), the subscriber's side: a user follows their own running job's output. */
  async function followedJob(t: Target = s) {
    const u = await t.user('operator');
    const job = await submit(t, u.token, { command: TICK, timeout_seconds: 60 });
    return { u, job };
  }

  it('graphql-ws: a user following jobLog of their own running job is deactivated: the socket closes 4403 and no chunk arrives after ~1 s', async () => {
    const { u, job } = await followedJob();
    try {
      const c = connect(u.token);
      const arrivals: number[] = [];
      const t = track<Chunk>(c.client, JOB_LOG, { id: job.id }, () => void arrivals.push(Date.now()));
      await waitFor(() => arrivals.length >= 3, 30_000);

      await patchUser(u.id, { is_active: false });
      const changedAt = Date.now();

      const closed = await withTimeout(c.closed, CUT_BOUND_MS, 'the jobLog socket closing after deactivation');
      expect(closed.code, closed.reason).toBe(4403);
      expect(t.values.length).toBe(arrivals.length);
      expect(arrivals.filter((at) => at > changedAt + 1000).map((at) => at - changedAt), 'chunks (ms after the change)').toEqual([]);
    } finally {
      await cancel(job.id);
    }
  });

  /**
   * The case (b): `spy`, an admin with open jobEvents subscriptions,
   * is demoted to viewer and deactivated (the main admin stays, so the
   * last-active-admin guard lets it happen); then a victim submits a job with
   * a secret env value that prints private output. Returns the victim's job.
   */
  async function demoteDeactivateThenVictimJob(spy: User, victim: User, live: () => boolean, t: Target = s) {
    // The subscriptions are live: a harmless job of the victim shows up first.
    const warm = await submit(t, victim.token, { command: ['true'], env: { HARMLESS: 'yes' } });
    await waitTerminal(t, victim.token, warm.id);
    await waitFor(live, 30_000);

    await patchUser(spy.id, { role: 'viewer' }, t);
    await patchUser(spy.id, { is_active: false }, t);
    const changedAt = Date.now();
    // At once, as a victim would: the attacker's streams get no grace period.
    const secret = await submit(t, victim.token, { command: SECRET_COMMAND, env: SECRET_ENV });
    const done = await waitTerminal(t, victim.token, secret.id);
    expect(done.status).toBe('success');
    return { secret, warm, changedAt };
  }

  function expectNothingOf(text: string, secretJobId: string, what: string) {
    expect(text, `${what}: the victim's env value`).not.toContain('hunter2');
    expect(text, `${what}: the victim's output`).not.toContain('private-output');
    expect(text, `${what}: the victim's job id`).not.toContain(secretJobId);
  }

  it('graphql-ws: an admin subscribed to jobEvents, demoted to viewer and deactivated, receives nothing of a job submitted afterwards; the socket is closed 4403', async () => {
    const spy = await s.user('admin');
    const victim = await s.user('operator');
    const c = connect(spy.token);
    const ws = await withTimeout(c.socket, 10_000, 'graphql-ws connection');
    const frames: { at: number; text: string }[] = [];
    ws.on('message', (data: Buffer) => frames.push({ at: Date.now(), text: data.toString('utf8') }));
    const withEnv = track(c.client, EVENTS_WITH_ENV, {});
    const withLogs = track(c.client, EVENTS_WITH_LOGS, {});

    const { secret } = await demoteDeactivateThenVictimJob(
      spy,
      victim,
      () => withEnv.values.some((v: any) => v?.env?.HARMLESS === 'yes') && withLogs.values.some((v: any) => v?.status === 'SUCCESS'),
    );

    // Bounded: the socket must be closed; give stragglers a moment either way.
    await Promise.race([c.closed, sleep(CUT_BOUND_MS)]);
    await sleep(500);
    expectNothingOf(frames.map((f) => f.text).join('\n'), secret.id, 'graphql-ws frames');
    expect(withEnv.values.filter((v: any) => v?.id === secret.id)).toEqual([]);
    expect(withLogs.values.filter((v: any) => v?.id === secret.id)).toEqual([]);
    const closed = await withTimeout(c.closed, 1, 'the spy\'s socket closed');
    expect(closed.code, closed.reason).toBe(4403);
  });

  describe('GraphQL over SSE', () => {
    // These streams come from a server of their own in a child process (the
    // real CLI), one per test, every call to it bounded: a server that loops
    // on a cut stream (one did: an error event per pull, forever, at 100% CPU)
    // then fails the test instead of starving this process's event loop,
    // which would freeze the whole run, or the next test.
    let childDb: TestDatabase | null = null;
    let child: SpawnedServer | null = null;
    let c: Target;
    let n = 0;

    beforeEach(async () => {
      childDb = await createTestDatabase(provider);
      const port = await freePort();
      const srv = (child = await spawnServer(testServerEnv(childDb, { PORT: String(port) })));
      const request: TestServer['request'] = (method, path, opts) => withTimeout(srv.request(method, path, opts), 10_000, `child server: ${method} ${path}`);
      const adminToken = await srv.token(ADMIN_EMAIL, ADMIN_PASSWORD);
      c = {
        url: `http://127.0.0.1:${port}`,
        request,
        adminToken,
        async user(role) {
          const email = `sse-${role}-${++n}-${Math.random().toString(36).slice(2, 8)}@example.com`;
          const password = `Sse-pass-${n}-long`;
          const res = await request('POST', '/users', { token: adminToken, body: { email, password, role } });
          if (res.status !== 201) throw new Error(`create user: ${res.status} ${res.text}`);
          return { id: res.body.id, email, password, token: await withTimeout(srv.token(email, password), 10_000, 'child server: login') };
        },
      };
    }, 90_000);
    afterEach(async () => {
      for (const r of streams) r.abort();
      if (child) {
        const { child: proc, exited } = child;
        proc.kill('SIGTERM');
        const killer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(killer);
        child = null;
      }
      await childDb?.drop();
      childDb = null;
    }, 60_000);

    it('GraphQL over SSE: a user following jobLog of their own running job is deactivated: the stream ends and no chunk arrives after ~1 s', async () => {
      const { u, job } = await followedJob(c);
      try {
        const r = await graphqlSse(c.url, u.token, JOB_LOG, { id: job.id });
        streams.push(r);
        expect(r.response.status).toBe(200);
        expect(r.response.headers.get('content-type')).toContain('text/event-stream');
        const chunks = () => nextResults(r).filter((n) => n.result.data?.jobLog);
        await waitFor(() => chunks().length >= 3, 30_000);

        await patchUser(u.id, { is_active: false }, c);
        const changedAt = Date.now();

        await withTimeout(r.ended, CUT_BOUND_MS, 'the jobLog SSE stream ending after deactivation');
        expect(chunks().filter((n) => n.at > changedAt + 1000).map((n) => n.at - changedAt), 'chunks (ms after the change)').toEqual([]);
      } finally {
        for (const r of streams) r.abort();
        await cancel(job.id, c);
      }
    });

    it('GraphQL over SSE: an admin subscribed to jobEvents, demoted to viewer and deactivated, receives nothing of a job submitted afterwards; the streams end', async () => {
      const spy = await c.user('admin');
      const victim = await c.user('operator');
      const withEnv = await graphqlSse(c.url, spy.token, EVENTS_WITH_ENV);
      const withLogs = await graphqlSse(c.url, spy.token, EVENTS_WITH_LOGS);
      streams.push(withEnv, withLogs);
      expect(withEnv.response.status).toBe(200);
      expect(withLogs.response.status).toBe(200);

      const { secret } = await demoteDeactivateThenVictimJob(spy, victim, () =>
        nextResults(withEnv).some((n) => n.result.data?.jobEvents?.env?.HARMLESS === 'yes') &&
        nextResults(withLogs).some((n) => n.result.data?.jobEvents?.status === 'SUCCESS'),
        c,
      );

      await Promise.race([Promise.all([withEnv.ended, withLogs.ended]), sleep(CUT_BOUND_MS)]);
      await sleep(500);
      expectNothingOf(withEnv.text(), secret.id, 'SSE jobEvents with env');
      expectNothingOf(withLogs.text(), secret.id, 'SSE jobEvents with logs');
      expect(withEnv.isEnded(), 'the env stream ended').toBe(true);
      expect(withLogs.isEnded(), 'the logs stream ended').toBe(true);
    });
  });

  it.each([
    ['text/plain', false],
    ['text/event-stream', true],
  ] as const)('the REST log stream (%s) of a user who is deactivated ends promptly, nothing after ~1 s', async (accept, sse) => {
    const { u, job } = await followedJob();
    try {
      const r = await openStream(`${s.api}/jobs/${job.id}/logs/stream`, { headers: { authorization: `Bearer ${u.token}`, accept } }, { sse });
      streams.push(r);
      expect(r.response.status).toBe(200);
      expect(r.response.headers.get('content-type')).toContain(accept);
      await waitFor(() => (r.text().match(/tick/g) ?? []).length >= 3, 30_000);

      await patchUser(u.id, { is_active: false });
      const changedAt = Date.now();

      await withTimeout(r.ended, CUT_BOUND_MS, 'the log stream ending after deactivation');
      expect(r.pieces.filter((p) => p.at > changedAt + 1000 && p.text.includes('tick')).map((p) => p.at - changedAt), 'output (ms after the change)').toEqual([]);
      // The job itself goes on (only the reader lost access).
      const job2 = await asAdmin('GET', `/jobs/${job.id}`);
      expect(job2.body.status).toBe('running');
    } finally {
      await cancel(job.id);
    }
  });

  // ---- expired and garbage tokens ----------------------------------------

  it('an expired session token gets 401 "token expired"; a garbage one "malformed token" (REST, GraphQL, graphql-ws)', async () => {
    // JWT_TTL_SECONDS is at least 60: the token is re-signed with the test secret, every claim of a real one (sid too) kept, only the times moved back.
    const u = await s.user('operator');
    const claims = decodeJwt(u.token);
    expect(typeof claims.sid, 'the session id claim').toBe('string');
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ ...claims, iat: now - 7200, exp: now - 60 })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(s.env.JWT_SECRET!));
    await expectRefused(expired, 'token expired', 'an expired session token');
    await expectWorks(u.token, u.id, 'the live token of the same session');
    for (const garbage of ['garbage', 'not.a.jwt', u.token.split('.').slice(0, 2).join('.')]) {
      await expectRefused(garbage, 'malformed token', `garbage ${JSON.stringify(garbage)}`);
    }
  });
});
