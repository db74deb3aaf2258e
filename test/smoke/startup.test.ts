import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
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
    const children = readdirSync(`/proc/${process.pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
    );
    const commands = children.map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
      } catch {
        return '';
      }
    });
    expect(commands.some((c) => c?.endsWith('/dist/jobrunner-spawner'))).toBe(true);
  });
});
