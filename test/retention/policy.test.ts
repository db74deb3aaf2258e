// Retention deletes exactly what the policy says, and nothing else, on both
// providers: terminal jobs finished more than RETENTION_JOBS_DAYS ago go with
// their output and run directory; a batch goes whole, only once all its jobs
// are past the policy; output of jobs finished more than RETENTION_LOGS_DAYS
// ago is removed and the row kept, its logs then answering 410 naming when.
//
// Age is simulated by back-dating rows in the database (finished_at, and the
// batch's created_at): nobody waits for days. Each job runs for real first,
// so it has stored output and (without a working_dir) a run directory.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { runJob, submit, waitRunning, waitTerminal, type JobRead } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { JOB_LOG, track, withTimeout, wsClient } from '../helpers/ws.js';

const DAY = 86_400_000;

const ENV = {
  RETENTION_JOBS_DAYS: '30',
  RETENTION_LOGS_DAYS: '7',
  // Nothing scheduled during the test: runs are asked for through the API.
  RETENTION_INTERVAL_MINUTES: '10080',
  // Small pages, so a run takes several of them.
  RETENTION_BATCH_ROWS: '10',
};

describe.each(PROVIDERS)('retention policy on %s', (provider) => {
  let s: TestServer;
  let user: { id: string; token: string };
  let other: { id: string; token: string };

  beforeAll(async () => {
    s = await startServer(provider, ENV);
    user = await s.user('operator', { max_concurrent_jobs: 20 });
    other = await s.user('operator', { max_concurrent_jobs: 20 });
  });

  afterAll(async () => {
    await s?.stop();
  });

  const prisma = () => s.app.db.prisma;

  /** Moves a job's times (or a batch's creation) `days` into the past. */
  async function backdate(ids: string[], days: number) {
    const at = new Date(Date.now() - days * DAY);
    await prisma().job.updateMany({ where: { id: { in: ids } }, data: { createdAt: at, startedAt: at, finishedAt: at } });
  }
  const backdateBatch = (id: string, days: number) => prisma().batch.update({ where: { id }, data: { createdAt: new Date(Date.now() - days * DAY) } });

  const chunks = (jobId: string) => prisma().jobLogChunk.count({ where: { jobId } });

  /** A finished job of `token`'s user with output on both streams. */
  const finished = async (token: string, extra: Record<string, unknown> = {}) =>
    (await runJob(s, token, { name: 'ret', command: ['sh', '-c', 'echo out-$0; echo err >&2', String(Math.random())], ...extra })).job;

  async function batch(token: string, n: number): Promise<{ id: string; jobs: JobRead[] }> {
    const res = await s.request('POST', '/job-batches', { token, body: { name: 'ret-batch', jobs: Array.from({ length: n }, () => ({ name: 'b', command: ['sh', '-c', 'echo batch-out'] })) } });
    expect(res.status, res.text).toBe(201);
    const jobs = await Promise.all(res.body.jobs.map((j: JobRead) => waitTerminal(s, token, j.id)));
    return { id: res.body.id, jobs };
  }

  const run = async () => {
    const res = await s.request('POST', '/admin/retention/run', { token: s.adminToken });
    expect(res.status, res.text).toBe(200);
    return res.body;
  };

  it('deletes old jobs (rows, chunks, run directories), removes the output of aging ones, keeps the rest, during concurrent submissions', async () => {
    const workspace = join(s.db.dataDir, 'workspace', 'shared');
    mkdirSync(workspace, { recursive: true });

    // Past RETENTION_JOBS_DAYS: deleted whole.
    const old = await Promise.all([finished(user.token), finished(user.token), finished(other.token)]);
    // Past it, but in a working_dir of the user's own: the row goes, the directory stays.
    const oldInWorkspace = await finished(user.token, { working_dir: workspace });
    // Past RETENTION_LOGS_DAYS only: output removed, row kept.
    const aging = await Promise.all([finished(user.token), finished(other.token)]);
    // Recent: untouched.
    const recent = await Promise.all([finished(user.token), finished(other.token)]);
    // A batch all of whose jobs are past the policy goes whole; one with a recent job stays whole.
    const gone = await batch(user.token, 3);
    const kept = await batch(user.token, 2);
    // An old job that still runs is never touched, however old it looks.
    const running = await submit(s, user.token, { name: 'ret-running', command: ['sleep', '300'] });
    await waitRunning(s, user.token, running.id);

    await backdate([...old, oldInWorkspace].map((j) => j.id), 40);
    await backdate(aging.map((j) => j.id), 10);
    await backdate(gone.jobs.map((j) => j.id), 40);
    await backdateBatch(gone.id, 40);
    await backdate([kept.jobs[0]!.id], 40);
    await backdateBatch(kept.id, 40);
    await prisma().job.update({ where: { id: running.id }, data: { createdAt: new Date(Date.now() - 40 * DAY) } });

    // A run that stopped after marking a job and before deleting its chunks (a crash): the next process's first run sweeps them.
    const interrupted = await finished(user.token);
    await prisma().job.update({ where: { id: interrupted.id }, data: { logsRemovedAt: new Date() } });
    expect(await chunks(interrupted.id)).toBeGreaterThan(0);

    const runDirs = [...old, ...gone.jobs].map((j) => j.working_dir);
    for (const d of runDirs) expect(existsSync(d), `run directory ${d} before`).toBe(true);
    const keptBefore = (await s.request('GET', `/job-batches/${kept.id}`, { token: user.token })).body;
    const recentChunks = await Promise.all(recent.map((j) => chunks(j.id)));
    const allBefore = new Set((await prisma().job.findMany({ select: { id: true } })).map((j) => j.id));

    // Submissions keep flowing while retention runs.
    const [report, ...submitted] = await Promise.all([
      run(),
      ...Array.from({ length: 20 }, (_, i) => submit(s, i % 2 ? user.token : other.token, { name: 'during', command: ['true'] })),
    ]);

    const deleted = [...old, oldInWorkspace, ...gone.jobs].map((j) => j.id);
    expect(report).toMatchObject({
      jobs_deleted: deleted.length,
      batches_deleted: 1,
      // Deleted jobs' output, the aging jobs' and the old job of the kept batch.
      logs_removed: deleted.length + aging.length + 1,
      run_dirs_removed: runDirs.length,
    });
    expect(report.chunks_deleted).toBeGreaterThanOrEqual(deleted.length + aging.length + 1);

    // Exactly the deleted jobs are gone: every other row, the new submissions included, is there.
    const allAfter = new Set((await prisma().job.findMany({ select: { id: true } })).map((j) => j.id));
    expect([...allBefore].filter((id) => !allAfter.has(id)).sort()).toEqual([...deleted].sort());
    for (const j of submitted) expect(allAfter.has(j.id), `job submitted during the run ${j.id}`).toBe(true);
    for (const id of deleted) {
      expect(await chunks(id), `chunks of deleted job ${id}`).toBe(0);
      expect((await s.request('GET', `/jobs/${id}`, { token: s.adminToken })).status).toBe(404);
    }
    for (const d of runDirs) expect(existsSync(d), `run directory ${d} after`).toBe(false);
    expect(existsSync(workspace), 'a working_dir the job did not own').toBe(true);
    expect((await s.request('GET', `/job-batches/${gone.id}`, { token: user.token })).status).toBe(404);

    // The batch with a recent job: same counts and status, all its jobs there.
    const keptAfter = (await s.request('GET', `/job-batches/${kept.id}`, { token: user.token })).body;
    expect({ status: keptAfter.status, counts: keptAfter.job_counts, jobs: keptAfter.jobs.map((j: JobRead) => j.id) }).toEqual({
      status: keptBefore.status, counts: keptBefore.job_counts, jobs: keptBefore.jobs.map((j: JobRead) => j.id),
    });

    expect(await chunks(interrupted.id), 'chunks of a job marked by an interrupted run').toBe(0);
    expect((await s.request('GET', `/jobs/${interrupted.id}`, { token: user.token })).status).toBe(200);

    // Recent jobs keep every chunk and their logs.
    expect(await Promise.all(recent.map((j) => chunks(j.id)))).toEqual(recentChunks);
    for (const j of recent) {
      expect((await s.request('GET', `/jobs/${j.id}/logs`, { token: s.adminToken })).body.stdout).toMatch(/^out-/);
      expect((await s.request('GET', `/jobs/${j.id}`, { token: s.adminToken })).body.logs_removed_at).toBeNull();
    }
    expect((await s.request('GET', `/jobs/${running.id}`, { token: user.token })).body.status).toBe('running');
    await s.request('POST', `/jobs/${running.id}/cancel`, { token: user.token });

    // A second run finds nothing more.
    expect(await run()).toMatchObject({ jobs_deleted: 0, batches_deleted: 0, logs_removed: 0, chunks_deleted: 0, run_dirs_removed: 0 });

    // The run is in the audit trail, with who asked.
    const audit = await s.request('GET', '/admin/audit?action=retention.run', { token: s.adminToken });
    expect(audit.body[0]).toMatchObject({ action: 'retention.run', outcome: 'success', target_type: 'storage' });
  });

  it('logs-only: the job stays, its logs answer 410 saying when they were removed (REST, log stream, GraphQL)', async () => {
    const job = await finished(user.token);
    await backdate([job.id], 10);
    await run();

    const row = await prisma().job.findUniqueOrThrow({ where: { id: job.id } });
    expect(row.logsRemovedAt).toBeInstanceOf(Date);
    expect(await chunks(job.id)).toBe(0);
    const when = row.logsRemovedAt!.toISOString();

    const read = await s.request('GET', `/jobs/${job.id}`, { token: user.token });
    expect(read.status).toBe(200);
    expect(read.body.logs_removed_at).toBe(when);
    const logs = await s.request('GET', `/jobs/${job.id}/logs`, { token: user.token });
    expect(logs.status).toBe(410);
    expect(logs.body.detail).toContain(`removed at ${when}`);
    const stream = await s.request('GET', `/jobs/${job.id}/logs/stream`, { token: user.token, headers: { accept: 'text/event-stream' } });
    expect(stream.status).toBe(410);
    expect(stream.body.detail).toContain(`removed at ${when}`);

    expect((await s.graphql('query($id: ID!) { job(id: $id) { logsRemovedAt } }', { id: job.id }, user.token)).data.job.logsRemovedAt).toBe(when);
    const gql = await s.graphql('query($id: ID!) { job(id: $id) { id logs { stdout } } }', { id: job.id }, user.token);
    expect(gql.errors?.[0]).toMatchObject({ extensions: { code: 'GONE' } });
    expect(gql.errors?.[0].message).toContain(when);

    const ws = wsClient(s, user.token);
    try {
      const t = track(ws.client, JOB_LOG, { id: job.id });
      expect(await withTimeout(t.done, 10_000, 'jobLog answer')).toBe('error');
      expect(t.values).toEqual([]);
      expect(JSON.stringify(t.errors[0])).toContain('GONE');
    } finally {
      await ws.dispose();
    }
  });

  it('a batch goes only once every one of its jobs is past the policy', async () => {
    const b = await batch(user.token, 2);
    await backdateBatch(b.id, 40);
    await backdate([b.jobs[0]!.id], 40);
    await backdate([b.jobs[1]!.id], 29);
    await run();
    const still = await s.request('GET', `/job-batches/${b.id}`, { token: user.token });
    expect(still.status).toBe(200);
    expect(still.body.jobs.map((j: JobRead) => j.id)).toEqual(b.jobs.map((j) => j.id));
    expect(still.body.job_counts.total).toBe(2);

    await backdate([b.jobs[1]!.id], 31);
    const report = await run();
    expect(report).toMatchObject({ batches_deleted: 1, jobs_deleted: 2 });
    expect((await s.request('GET', `/job-batches/${b.id}`, { token: user.token })).status).toBe(404);
    expect(await prisma().job.count({ where: { batchId: b.id } })).toBe(0);
  });

  it('GET /admin/storage: stored output and jobs per user, as the rows say', async () => {
    const res = await s.request('GET', '/admin/storage', { token: s.adminToken });
    expect(res.status, res.text).toBe(200);
    const rows = await prisma().job.findMany({ where: { ownerId: user.id }, select: { stdoutBytes: true, stderrBytes: true, logsRemovedAt: true } });
    const mine = res.body.users.find((u: { user_id: string }) => u.user_id === user.id);
    expect(mine).toMatchObject({
      jobs: rows.length,
      stored_log_bytes: rows.filter((r) => !r.logsRemovedAt).reduce((n, r) => n + r.stdoutBytes + r.stderrBytes, 0),
      jobs_with_logs_removed: rows.filter((r) => r.logsRemovedAt).length,
    });
    expect(res.body.policy).toMatchObject({ job_days: 30, log_days: 7, batch_rows: 10, log_quota_bytes: null, log_quota_mode: 'reject' });
    expect(res.body.database).toMatchObject(provider === 'sqlite' ? { provider, auto_vacuum: 'incremental' } : { provider, auto_vacuum: null, wal_bytes: null });
    expect(res.body.database.bytes).toBeGreaterThan(0);
  });
});
