// How jobs are isolated, as the API reports it: the coarse level in health
// (no token needed) and the details for admins only (GET /admin/isolation,
// GraphQL `isolation`); null in both for a process that runs no jobs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp } from '../../src/server.js';
import { PROVIDERS } from '../helpers/db.js';
import { restClient, startServer, type TestServer } from '../helpers/server.js';

const LEVELS = ['full', 'reduced', 'off', 'none'];
const HEALTH_KEYS = ['database', 'isolation', 'redis', 'status', 'version'];
const ISOLATION_KEYS = ['features', 'identity', 'level', 'missing', 'network'];
const ISOLATION_FIELDS = 'isolation { level identity features missing network }';

describe.each(PROVIDERS)('isolation status on %s', (provider) => {
  let s: TestServer;
  let operator: Awaited<ReturnType<TestServer['user']>>;
  let viewer: Awaited<ReturnType<TestServer['user']>>;
  beforeAll(async () => {
    s = await startServer(provider);
    [operator, viewer] = await Promise.all([s.user('operator'), s.user('viewer')]);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('GET /health carries the isolation level, without a token', async () => {
    const res = await s.request('GET', '/health');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(HEALTH_KEYS);
    expect(LEVELS).toContain(res.body.isolation);
  });

  it('GraphQL health carries the same level, without a token', async () => {
    const res = await s.graphql('{ health { status isolation } }', {}, null);
    expect(res.errors).toBeUndefined();
    expect(res.data.health.isolation).toBe((await s.request('GET', '/health')).body.isolation);
  });

  it('an admin gets the details over REST and GraphQL, the level agreeing with health', async () => {
    const res = await s.request('GET', '/admin/isolation', { token: s.adminToken });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(ISOLATION_KEYS);
    expect(res.body.level).toBe((await s.request('GET', '/health')).body.isolation);
    expect(typeof res.body.identity).toBe('string');
    expect(typeof res.body.network).toBe('string');
    for (const list of [res.body.features, res.body.missing]) {
      expect(Array.isArray(list)).toBe(true);
      for (const item of list) expect(typeof item).toBe('string');
    }
    const gql = await s.graphql(`{ ${ISOLATION_FIELDS} }`);
    expect(gql.errors).toBeUndefined();
    expect(gql.data.isolation).toEqual(res.body);
  });

  it('operators and viewers get 403 (FORBIDDEN); without a token, 401 (UNAUTHENTICATED)', async () => {
    for (const who of [operator, viewer]) {
      const res = await s.request('GET', '/admin/isolation', { token: who.token });
      expect(res.status, `${who.email}: ${res.text}`).toBe(403);
      expect(typeof res.body.detail).toBe('string');
      const gql = await s.graphql(`{ ${ISOLATION_FIELDS} }`, {}, who.token);
      expect(gql.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(gql.data?.isolation ?? null).toBeNull();
    }
    const anon = await s.request('GET', '/admin/isolation');
    expect(anon.status).toBe(401);
    expect(anon.body).toEqual({ detail: 'Not authenticated' });
    expect(anon.headers.get('www-authenticate')).toBe('Bearer');
    const gql = await s.graphql(`{ ${ISOLATION_FIELDS} }`, {}, null);
    expect(gql.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('OpenAPI documents GET /admin/isolation as admin-only, and the isolation field of health', async () => {
    const doc = await (await fetch(`${s.api}/openapi.json`)).json() as any;
    const op = doc.paths['/api/v1/admin/isolation']?.get;
    expect(op).toBeDefined();
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '401', '403']));
    const health = doc.paths['/api/v1/health'].get.responses['200'].content['application/json'].schema;
    expect(Object.keys(health.properties)).toContain('isolation');
  });

  it('a process that runs no jobs (serve --no-worker) reports null in both', async () => {
    const app = await buildApp(loadConfig(s.env), { worker: false, log: createLogger('error') });
    try {
      const request = restClient(`${await app.start()}/api/v1`);
      const health = await request('GET', '/health');
      expect(health.status).toBe(200);
      expect(health.body.isolation).toBeNull();
      const details = await request('GET', '/admin/isolation', { token: s.adminToken });
      expect(details.status, details.text).toBe(200);
      expect(details.body).toBeNull();
    } finally {
      await app.stop(0);
    }
  });
});
