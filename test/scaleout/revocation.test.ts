// Revocation across API processes (issue #12): two API apps on one
// PostgreSQL database and one Redis. A change made through API A (an admin
// deactivating a user, changing their password; the user logging out) is
// honoured by API B within the stated bound (5 s): REST 401 "token revoked",
// B's open graphql-ws socket of that session closed 4403, B's GraphQL SSE
// stream ended, new sockets on B refused. (The apps run in this test process,
// each with its own database pool and Redis connections, as in
// multiProcess.test.ts.)
//
// On the code before #12's revocation work (e.g. 838f032) these fail: B's
// open socket stayed open after a deactivation, a password change left the
// token valid, and logout did not exist (404: the call cannot be expressed).
//
// The config has no Redis key prefix (channels are `jobrunner:<topic>`), so
// these apps share channels with any other suite running on the same Redis;
// every check here is about this test's own users and sessions.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { graphqlSse, type StreamReader } from '../helpers/sse.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, restClient, tokenClient, waitFor, type TestServer } from '../helpers/server.js';
import { track, withTimeout, wsClient, type WsClient } from '../helpers/ws.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The stated bound for a change made on one API process to reach another. */
const BOUND_MS = 5_000;
const EVENTS = 'subscription { jobEvents { id status } }';

interface Api {
  app: App;
  url: string;
  request: TestServer['request'];
  token: (email: string, password: string) => Promise<string>;
}

describe('revocation across two API processes on PostgreSQL + Redis', () => {
  let db: TestDatabase;
  let a: Api;
  let b: Api;
  let adminToken: string;
  const sockets: WsClient[] = [];
  const streams: StreamReader[] = [];
  let n = 0;

  const env = () => ({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: db.dataDir,
    DATABASE_URL: db.url,
    REDIS_URL,
    JWT_SECRET: 'scaleout-revocation-secret-long-enough-0123',
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    KILL_GRACE_SECONDS: '1',
    LOG_LEVEL: 'error',
  });

  async function startApi(): Promise<Api> {
    const app = await buildApp(loadConfig(env()), { log: createLogger('error'), worker: false });
    const url = await app.start();
    const api = `${url}${app.config.apiPrefix}`;
    return { app, url, request: restClient(api), token: tokenClient(api) };
  }

  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    mkdirSync(join(db.dataDir, 'workspace'), { recursive: true });
    a = await startApi(); // creates the admin
    b = await startApi();
    adminToken = await a.token(ADMIN_EMAIL, ADMIN_PASSWORD);
  });
  afterAll(async () => {
    for (const r of streams) r.abort();
    await Promise.all(sockets.map((c) => c.dispose()));
    await b?.app.stop(0);
    await a?.app.stop(0);
    await db?.drop();
  });

  /** An operator created through A, with a session (logged in through A). */
  async function operator() {
    const email = `scale-rev-${++n}-${Math.random().toString(36).slice(2, 8)}@example.com`;
    const password = `Scale-rev-pass-${n}`;
    const res = await a.request('POST', '/users', { token: adminToken, body: { email, password, role: 'operator' } });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.id as string, email, password, token: await a.token(email, password) };
  }

  /** A socket on `api` with a live subscription, connected. */
  async function openSocket(api: Api, token: string) {
    const c = wsClient({ url: api.url }, token);
    sockets.push(c);
    await withTimeout(c.socket, 10_000, 'graphql-ws connection');
    const sub = track(c.client, EVENTS, {});
    return { c, sub };
  }

  async function wsOutcome(api: Api, token: string): Promise<'open' | number> {
    const c = wsClient({ url: api.url }, token);
    try {
      return await withTimeout(Promise.race([c.socket.then(() => 'open' as const), c.closed.then((x) => x.code)]), 10_000, 'graphql-ws connection');
    } finally {
      await c.dispose();
    }
  }

  const restStatus = async (api: Api, token: string) => (await api.request('GET', '/jobs', { token })).status;

  async function expectRevokedOn(api: Api, token: string, what: string) {
    const res = await api.request('GET', '/jobs', { token });
    expect(res.status, `${what}: ${res.text}`).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge, what).toContain('error="invalid_token"');
    expect(challenge, what).toContain('error_description="token revoked"');
    expect(await wsOutcome(api, token), `${what}: a new socket`).toBe(4403);
  }

  /**
   * Everything B must show within the bound after a change made at
   * `changedAt`: REST 401, its open socket closed 4403, its SSE stream ended.
   */
  async function expectCutOnB(token: string, socket: { c: WsClient }, sse: StreamReader | null, changedAt: number, what: string) {
    const left = () => Math.max(1, changedAt + BOUND_MS - Date.now());
    await Promise.all([
      waitFor(async () => (await restStatus(b, token)) === 401, left(), 20).catch(() => {
        throw new Error(`${what}: API B still accepts the token on REST ${BOUND_MS} ms after the change`);
      }),
      withTimeout(socket.c.closed, left(), `${what}: API B's open socket closing`).then((closed) => expect(closed.code, `${what}: close code (${closed.reason})`).toBe(4403)),
      sse ? withTimeout(sse.ended, left(), `${what}: API B's GraphQL SSE stream ending`) : null,
    ]);
    await expectRevokedOn(b, token, `${what}: API B afterwards`);
  }

  it('a user deactivated through API A is refused by API B within 5 s: REST 401 "token revoked", its open socket closed 4403, its SSE stream ended, new sockets refused', async () => {
    const u = await operator();
    // B has seen the session (and cached whatever it caches) before the change.
    expect(await restStatus(b, u.token)).toBe(200);
    const socket = await openSocket(b, u.token);
    const sse = await graphqlSse(b.url, u.token, EVENTS);
    streams.push(sse);
    expect(sse.response.status).toBe(200);
    expect(await restStatus(b, u.token)).toBe(200);

    const res = await a.request('PATCH', `/users/${u.id}`, { token: adminToken, body: { is_active: false } });
    expect(res.status, res.text).toBe(200);
    await expectCutOnB(u.token, socket, sse, Date.now(), 'deactivation on A');
  });

  it('a password changed by the admin through API A revokes the session on API B within 5 s', async () => {
    const u = await operator();
    expect(await restStatus(b, u.token)).toBe(200);
    const socket = await openSocket(b, u.token);

    const res = await a.request('PATCH', `/users/${u.id}`, { token: adminToken, body: { password: 'Changed-on-A-1' } });
    expect(res.status, res.text).toBe(200);
    await expectCutOnB(u.token, socket, null, Date.now(), 'password change on A');
    // The new password works on B.
    expect(await restStatus(b, await b.token(u.email, 'Changed-on-A-1'))).toBe(200);
  });

  it('a logout on API A is honoured by API B within 5 s; the user\'s other session keeps working on B', async () => {
    const u = await operator();
    const other = await b.token(u.email, u.password);
    expect(await restStatus(b, u.token)).toBe(200);
    expect(await restStatus(b, other)).toBe(200);
    const socket = await openSocket(b, u.token);
    const otherSocket = await openSocket(b, other);

    // New route: the old code answers 404.
    const res = await a.request('POST', '/auth/logout', { token: u.token });
    expect(res.status, res.text).toBe(204);
    await expectCutOnB(u.token, socket, null, Date.now(), 'logout on A');

    expect(await restStatus(b, other)).toBe(200);
    expect(await wsOutcome(b, other)).toBe('open');
    expect(otherSocket.sub.isDone(), 'the other session\'s subscription').toBe(false);
  });

  it('a logout-all on API B is honoured by API A within 5 s', async () => {
    const u = await operator();
    const onB = await b.token(u.email, u.password);
    expect(await restStatus(a, u.token)).toBe(200);

    // New route: the old code answers 404.
    const res = await b.request('POST', '/auth/logout-all', { token: onB });
    expect(res.status, res.text).toBe(204);
    const changedAt = Date.now();
    await waitFor(async () => (await restStatus(a, u.token)) === 401, Math.max(1, changedAt + BOUND_MS - Date.now()), 20);
    await expectRevokedOn(a, u.token, 'logout-all on B, seen on A');
  });
});
