import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { childProcesses } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe.each(PROVIDERS)('start-up on %s', (provider) => {
  let s: TestServer;
  beforeAll(async () => { s = await startServer(provider); });
  afterAll(async () => { await s?.stop(); });

  it('answers health and issues the bootstrap admin a token', async () => {
    const health = await s.request('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', database: true, redis: null });
    const me = await s.graphql('{ me { email role } }');
    expect(me.data.me).toEqual({ email: 'admin@example.com', role: 'ADMIN' });
  });

  it('starts jobs through the native spawner helper built at install', () => {
    // The program, whatever its arguments (with isolation on it gets --isolate, --hide ...).
    expect(childProcesses().some((p) => p.cmdline.split(' ')[0]!.endsWith('/dist/jobrunner-spawner'))).toBe(true);
  });
});
