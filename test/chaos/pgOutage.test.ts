// A PostgreSQL outage longer than the reads' retries: every request is
// answered 503 with Retry-After and a detail saying the database is not
// answering (GraphQL: SERVICE_UNAVAILABLE), never a bare 500 or "Unexpected
// error.", and the service answers again once the database is back. The
// outage is real: the API reaches PostgreSQL through a TCP proxy this test
// cuts (the shared server is never touched).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, PG_ADMIN_URL, type TestDatabase } from '../helpers/db.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, restClient, testServerEnv, tokenClient, waitFor, type TestServer } from '../helpers/server.js';
import { JOB_UPDATED, track, withTimeout, wsClient } from '../helpers/ws.js';
import { startProxy, type TcpProxy } from './tcpProxy.js';

const UNAVAILABLE = /database is not answering/;

describe('PostgreSQL down for longer than the retries', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let app: App;
  let url: string;
  let request: TestServer['request'];
  let token: string;
  let jobId: string;

  const graphql = async (query: string, variables: Record<string, unknown> = {}) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, body: (await res.json()) as { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] } };
  };

  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const pgUrl = new URL(PG_ADMIN_URL);
    proxy = await startProxy(pgUrl.hostname, Number(pgUrl.port || 5432));
    // API only: a worker would fence itself during the outage, which the chaos suite covers.
    const config = loadConfig(testServerEnv(db, { DATABASE_URL: proxy.via(db.url) }));
    app = await buildApp(config, { log: createLogger('error'), worker: false });
    url = await app.start();
    request = restClient(`${url}${config.apiPrefix}`);
    token = await tokenClient(`${url}${config.apiPrefix}`)(ADMIN_EMAIL, ADMIN_PASSWORD);
    const res = await request('POST', '/jobs', { token, body: { name: 'before', command: ['true'] } });
    expect(res.status).toBe(202);
    jobId = res.body.id;
  });

  afterAll(async () => {
    await proxy?.restore();
    await app?.stop(0);
    await proxy?.close();
    await db?.drop();
  });

  it('answers 503 with Retry-After over REST, SERVICE_UNAVAILABLE over GraphQL and WebSocket, then serves again', { timeout: 60_000 }, async () => {
    const created = await request('POST', '/auth/tokens', { token, body: { name: 'outage', scopes: ['jobs:read'], expires_in_days: 1 } });
    expect(created.status).toBe(201);
    const apiToken: string = created.body.token;
    const connected = wsClient({ url }, token);
    await withTimeout(connected.socket, 10_000, 'the WebSocket to connect');

    proxy.cut();
    try {
      for (const [method, path, body] of [
        ['GET', '/jobs', undefined],
        ['GET', `/jobs/${jobId}`, undefined],
        ['POST', '/jobs', { name: 'during', command: ['true'] }],
      ] as const) {
        const res = await request(method, path, { token, body });
        expect({ method, path, status: res.status }).toEqual({ method, path, status: 503 });
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(res.body.detail).toMatch(UNAVAILABLE);
      }

      const q = await graphql('query ($id: ID!) { job(id: $id) { id status } }', { id: jobId });
      expect(q.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect(q.body.errors?.[0]?.message).toMatch(UNAVAILABLE);

      // Connected before the outage: the operation fails, the socket stays.
      const updates = track(connected.client, JOB_UPDATED, { id: jobId });
      expect(await withTimeout(updates.done, 20_000, 'jobUpdated to end')).toBe('error');
      expect(updates.errors[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect(updates.errors[0]?.message).toMatch(UNAVAILABLE);

      // Connecting during the outage with a credential not read before (nothing cached): 1013 Try Again Later, which graphql-ws clients retry.
      const late = wsClient({ url }, apiToken);
      try {
        const closed = await withTimeout(late.closed, 20_000, 'the socket to close');
        expect(closed.code).toBe(1013);
        expect(closed.reason).toMatch(UNAVAILABLE);
      } finally {
        await late.dispose();
      }
    } finally {
      await proxy.restore();
      await connected.dispose();
    }

    await waitFor(async () => (await request('GET', `/jobs/${jobId}`, { token })).status === 200, 20_000, 200);
    expect((await request('POST', '/jobs', { token, body: { name: 'after', command: ['true'] } })).status).toBe(202);
  });
});
