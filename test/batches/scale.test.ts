// A 1000-job batch: created in one request, every job runs to success while
// the owner's limit is never exceeded, and the job list filters by batch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { counts, expectJobRead, getBatch, listAll, manyJobs, maxOverlap, waitAllDone, type BatchRead, type JobRead, type User } from './helpers.js';

const LIMIT = 6;

describe.each(PROVIDERS)('1000-job batch on %s', (provider) => {
  let s: TestServer;
  let op: User;
  beforeAll(async () => {
    // Worker slots well above the user's limit: here only the limit may hold jobs back.
    s = await startServer(provider, { WORKER_CONCURRENCY: '12' });
    op = await s.user('operator', { max_concurrent_jobs: LIMIT });
  });
  afterAll(async () => { await s?.stop(); });

  it(`is created in one request and runs to success, never more than ${LIMIT} at once`, { timeout: 300_000 }, async () => {
    // A small batch of the same user first, so the batch filter has something to leave out.
    const small = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'small', jobs: manyJobs(2, ['true'], 's') } });
    expect(small.status).toBe(201);

    const t0 = performance.now();
    const res = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'thousand', description: '1000 x true', jobs: manyJobs(1000, ['true']) } });
    const ms = Math.round(performance.now() - t0);
    console.log(`[${provider}] 1000-job batch created in ${ms} ms (one POST /job-batches)`);
    expect(res.status).toBe(201);
    const b = res.body as BatchRead;
    expect(b.job_counts.total).toBe(1000);
    expect(b.jobs).toHaveLength(1000);
    expect(b.jobs!.map((j) => j.name)).toEqual(manyJobs(1000, ['true']).map((j) => j.name));
    expect(new Set(b.jobs!.map((j) => j.id)).size).toBe(1000);
    for (const j of b.jobs!) expectJobRead(j, { batchId: b.id, ownerId: op.id });
    const ids = b.jobs!.map((j) => j.id);

    const tRun = performance.now();
    const final = await waitAllDone(s, op.token, b.id);
    console.log(`[${provider}] 1000 jobs ran in ${Math.round(performance.now() - tRun)} ms`);
    expect(final).toEqual(counts({ success: 1000 }));
    const done = await getBatch(s, op.token, b.id);
    expect(done.status).toBe('success');
    expect(done.job_counts).toEqual(counts({ success: 1000 }));
    expect(done.jobs!.map((j) => j.id)).toEqual(ids);
    expect(done.jobs!.every((j) => j.exit_code === 0)).toBe(true);
    // The limit held the whole time.
    const overlap = maxOverlap(done.jobs!);
    expect(overlap).toBeLessThanOrEqual(LIMIT);
    expect(overlap).toBeGreaterThanOrEqual(1);
    // Started in submission order.
    const starts = done.jobs!.map((j) => Date.parse(j.started_at!));
    for (let i = 1; i < starts.length; i++) expect(starts[i]!, `job ${i} started before job ${i - 1}`).toBeGreaterThanOrEqual(starts[i - 1]!);

    // GET /jobs?batch_id= pages through exactly these 1000 jobs.
    const listed = await listAll<JobRead>(s, op.token, `/jobs?batch_id=${b.id}`, 300);
    expect(listed.pages).toEqual([300, 300, 300, 100]);
    expect(listed.items.map((j) => j.id)).toEqual(ids);
    expect(listed.items.every((j) => j.batch_id === b.id && j.status === 'success')).toBe(true);
    const succeeded = await listAll<JobRead>(s, op.token, `/jobs?batch_id=${b.id}&status=success`, 250);
    expect(succeeded.items).toHaveLength(1000);

    // GraphQL jobs(batchId:) filters too.
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const r: any = await s.graphql(`query($b: ID, $after: String) { jobs(batchId: $b, first: 400, after: $after) { edges { node { id batchId } } pageInfo { hasNextPage endCursor } } }`, { b: b.id, after }, op.token);
      expect(r.errors).toBeUndefined();
      for (const e of r.data.jobs.edges) {
        expect(e.node.batchId).toBe(b.id);
        seen.push(e.node.id);
      }
      if (!r.data.jobs.pageInfo.hasNextPage) break;
      after = r.data.jobs.pageInfo.endCursor;
    }
    expect(seen).toEqual(ids);

    // The batch's own counters agree with the user's stats.
    const stats = await s.request('GET', '/jobs/stats', { token: op.token });
    expect(stats.body).toEqual(counts({ success: 1002 }));
  });
});
