import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

describe.each(PROVIDERS)('batches quick on %s', (provider) => {
  let s: TestServer;
  beforeAll(async () => { s = await startServer(provider); });
  afterAll(async () => { await s?.stop(); });

  it('creates the seed batch and runs it', async () => {
    const res = await s.request('POST', '/job-batches', { token: s.adminToken, body: {
      name: 'nightly-ui-suite', description: 'Chromium smoke',
      jobs: [{ name: 'login', command: ['echo', 'tests/login.py'] }, { name: 'checkout', command: ['echo', 'tests/checkout.py'] }],
    } });
    expect(res.status).toBe(201);
    expect(res.body.jobs.map((j: any) => j.name)).toEqual(['login', 'checkout']);
    const done = await waitFor(async () => {
      const b = await s.request('GET', `/job-batches/${res.body.id}`, { token: s.adminToken });
      return b.body.status === 'success' && b.body;
    });
    expect(done.job_counts).toEqual({ pending: 0, running: 0, success: 2, failed: 0, canceled: 0, total: 2 });
    const t0 = Date.now();
    const big = await s.request('POST', '/job-batches', { token: s.adminToken, body: { name: 'big', jobs: Array.from({ length: 1000 }, (_, i) => ({ name: `j${i}`, command: ['true'] })) } });
    console.log('1000-job batch ms', Date.now() - t0);
    expect(big.status).toBe(201);
    const bad = await s.request('POST', '/job-batches', { token: s.adminToken, body: { name: 'bad', jobs: [{ name: 'a', command: ['true'] }, { name: 'b' }] } });
    expect(bad.status).toBe(422);
    expect(bad.body.detail[0].loc).toEqual(['body', 'jobs', 1, 'command']);
  });
});
