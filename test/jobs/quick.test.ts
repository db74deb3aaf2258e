import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

describe.each(PROVIDERS)('jobs quick on %s', (provider) => {
  let s: TestServer;
  beforeAll(async () => { s = await startServer(provider); });
  afterAll(async () => { await s?.stop(); });

  it('runs echo', async () => {
    const res = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'e', command: ['sh', '-c', 'echo hi; echo err >&2; exit 3'] } });
    expect(res.status).toBe(202);
    const done = await waitFor(async () => {
      const j = await s.request('GET', `/jobs/${res.body.id}`, { token: s.adminToken });
      return ['success', 'failed'].includes(j.body.status) && j.body;
    });
    expect(done.exit_code).toBe(3);
    const logs = await s.request('GET', `/jobs/${res.body.id}/logs`, { token: s.adminToken });
    expect(logs.body).toMatchObject({ stdout: 'hi\n', stderr: 'err\n', status: 'failed' });
  });
});
