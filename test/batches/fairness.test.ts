// Batch jobs are ordinary jobs for scheduling: a user's limit caps them and a
// big batch does not starve other users' jobs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { counts, createBatch, manyJobs, waitBatch, waitJob, type BatchRead, type User } from './helpers.js';

describe.each(PROVIDERS)('batch fairness on %s', (provider) => {
  let s: TestServer;
  let a: User, b: User;
  beforeAll(async () => {
    s = await startServer(provider, { WORKER_CONCURRENCY: '2' });
    [a, b] = await Promise.all([s.user('operator', { max_concurrent_jobs: 1 }), s.user('operator')]);
  });
  afterAll(async () => { await s?.stop(); });

  it('a 200-job batch under a limit of 1 runs one job at a time and another user\'s job runs meanwhile', async () => {
    const big = await createBatch(s, a.token, { name: 'backlog', jobs: manyJobs(200, ['sleep', '30']) });
    const running = await waitBatch(s, a.token, big.id, (x) => x.job_counts.running === 1);
    expect(running.job_counts).toEqual(counts({ running: 1, pending: 199 }));
    expect(running.jobs![0]!.status).toBe('running');

    const job = await s.request('POST', '/jobs', { token: b.token, body: { name: 'quick', command: ['true'] } });
    expect(job.status).toBe(202);
    const done = await waitJob(s, b.token, job.body.id, (j) => j.status === 'success');
    expect(done.exit_code).toBe(0);

    // A's backlog is still waiting, and A never had more than its one slot.
    const still = await s.request('GET', `/job-batches/${big.id}`, { token: a.token });
    expect(still.body.job_counts).toEqual(counts({ running: 1, pending: 199 }));

    const cancel = await s.request('POST', `/job-batches/${big.id}/cancel`, { token: a.token });
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('canceled');
    expect(cancel.body.job_counts).toEqual(counts({ canceled: 200 }));
  });

  it('a batch that fills every worker slot does not starve another user: their job gets the next free slot', async () => {
    // A's limit now exceeds the worker's 2 slots.
    const limit = await s.request('POST', `/admin/limits/users/${a.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 10 } });
    expect(limit.status).toBe(200);
    const big = await createBatch(s, a.token, { name: 'saturate', jobs: manyJobs(60, ['sleep', '1']) });
    await waitBatch(s, a.token, big.id, (x) => x.job_counts.running === 2);
    // B submits while every worker slot is taken by A.
    const job = await s.request('POST', '/jobs', { token: b.token, body: { name: 'quick', command: ['true'] } });
    expect(job.status).toBe(202);
    const done = await waitJob(s, b.token, job.body.id, (j) => j.status === 'success', 15_000);

    const now = (await s.request('GET', `/job-batches/${big.id}`, { token: a.token })).body as BatchRead;
    expect(now.job_counts.pending).toBeGreaterThanOrEqual(40);
    // B waited for one of the two running jobs at most: no more of A's backlog started first.
    const bStart = Date.parse(done.started_at!);
    const aheadOfB = now.jobs!.filter((j) => j.started_at !== null && Date.parse(j.started_at) < bStart);
    expect(aheadOfB.map((j) => j.name)).toEqual(['j0', 'j1']);
    // The worker never ran more than WORKER_CONCURRENCY jobs.
    expect(now.job_counts.running).toBeLessThanOrEqual(2);

    const cancel = await s.request('POST', `/job-batches/${big.id}/cancel`, { token: a.token });
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('canceled');
  });
});
