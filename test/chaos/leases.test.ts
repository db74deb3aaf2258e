// Issue #14, scenarios 4 and 5: a worker declared dead while alive, and a
// job claimed but never started when its worker died. Real worker processes
// on PostgreSQL + Redis, paused with SIGSTOP and killed with SIGKILL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJob, getLogs, submit, waitStatus, waitTerminal } from '../helpers/jobs.js';
import { hostPidsWithMarker, killMarked, marker } from '../helpers/isolation.js';
import { waitFor } from '../helpers/server.js';
import { startCluster, type Cluster } from './cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('leases: a worker that cannot renew is fenced before anyone acts on its jobs', () => {
  let c: Cluster;
  const marks: string[] = [];

  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(async () => {
    killMarked(marks);
    await c?.close();
  });

  it('scenario 4: a worker paused past its lease has its job killed before the user\'s next job starts (cap 1 holds), and after SIGCONT writes nothing into it and does not come back under its old id', async () => {
    const user = await c.user(1);
    const first = await c.startWorker({}, 'paused-host');
    const a = marker('4441');
    const b = marker('4442');
    marks.push(a, b);
    // A ticks until killed; the other waits for the user's only slot.
    const jobA = await submit(c, user.token, { name: 'long', command: ['sh', '-c', `while true; do echo tick; sleep 0.2; done; sleep ${a}`], working_dir: c.workspace });
    await waitFor(async () => (await c.sql<{ n: number }>(`SELECT COUNT(*)::int AS n FROM job_log_chunks WHERE job_id = $1`, jobA.id))[0]!.n > 0, 30_000, 50);
    const oldWorkerId = (await c.sql<{ worker_id: string }>('SELECT worker_id FROM jobs WHERE id = $1', jobA.id))[0]!.worker_id;
    // Another worker, which will reap the first one and run B.
    await c.startWorker();
    const jobB = await submit(c, user.token, { name: 'next', command: ['sh', '-c', `echo B; sleep ${b}`], working_dir: c.workspace });

    // Sample the host's processes: the user's two jobs never run at the same time.
    let overlap = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        if (hostPidsWithMarker(a).length > 0 && hostPidsWithMarker(b).length > 0) overlap++;
        await sleep(20);
      }
    })();

    first.signal('SIGSTOP');
    try {
      // Lease 3 s (3 heartbeats of 1 s) plus a 1 s margin: B must start within a few seconds of that, never before A is dead.
      await waitStatus(c, user.token, jobB.id, ['running'], 30_000);
      await waitFor(() => hostPidsWithMarker(b).length > 0, 10_000, 20);
      await sleep(1000);
    } finally {
      sampling = false;
      await sampler;
    }
    expect(overlap).toBe(0);
    const reaped = await getJob(c, user.token, jobA.id);
    expect(reaped.status).toBe('failed');
    expect(reaped.error).toMatch(/worker lost/);
    expect(hostPidsWithMarker(a)).toEqual([]);
    const chunksBefore = (await c.sql<{ n: number }>('SELECT COUNT(*)::int AS n FROM job_log_chunks WHERE job_id = $1', jobA.id))[0]!.n;

    first.signal('SIGCONT');
    // Give the resumed worker time to act on everything it had pending: renewals, output, outcomes.
    await waitFor(() => first.output().includes('joining again under a new id'), 15_000, 50);
    await sleep(2000);
    const after = await getJob(c, user.token, jobA.id);
    expect(after.status).toBe('failed');
    expect(after.error).toBe(reaped.error);
    expect((await c.sql<{ n: number }>('SELECT COUNT(*)::int AS n FROM job_log_chunks WHERE job_id = $1', jobA.id))[0]!.n).toBe(chunksBefore);
    // Its old row is gone for good; it works on under a new id.
    const workerIds = (await c.sql<{ id: string }>('SELECT id FROM workers')).map((r) => r.id);
    expect(workerIds).not.toContain(oldWorkerId);
    expect(workerIds).toHaveLength(2);
    await c.request('POST', `/jobs/${jobB.id}/cancel`, { token: user.token });
  });

  it('scenario 5: a job claimed while the spawner helper was paused, whose worker was then killed, is never started by the helper on resume: it goes back to pending and runs once elsewhere', async () => {
    await c.killWorkers();
    const user = await c.user(2);
    const doomed = await c.startWorker({ WORKER_CONCURRENCY: '1' });
    const helper = await waitFor(() => doomed.helperPid(), 10_000, 50);
    const m = marker('5551');
    marks.push(m);
    process.kill(helper, 'SIGSTOP');
    try {
      const job = await submit(c, user.token, { name: 'claimed', command: ['sh', '-c', `echo ran-once; sleep ${m}; echo done`], working_dir: c.workspace });
      // Claimed by the worker whose helper cannot start it.
      await waitFor(async () => (await c.sql<{ worker_id: string | null }>('SELECT worker_id FROM jobs WHERE id = $1', job.id))[0]!.worker_id !== null, 30_000, 20);
      const claimed = (await c.sql<{ status: string }>('SELECT status FROM jobs WHERE id = $1', job.id))[0]!;
      expect(claimed.status).toBe('running');
      doomed.signal('SIGKILL');
      await doomed.exited;
    } finally {
      process.kill(helper, 'SIGCONT');
    }
    // The helper must exit without running the command it had buffered.
    await waitFor(() => {
      try {
        process.kill(helper, 0);
        return false;
      } catch {
        return true;
      }
    }, 10_000, 50);
    await sleep(500);
    expect(hostPidsWithMarker(m)).toEqual([]);

    // The job is given back and another worker runs it: exactly once, as attempt 2.
    await c.startWorker();
    const jobId = (await c.sql<{ id: string }>(`SELECT id FROM jobs WHERE name = 'claimed' ORDER BY created_at DESC LIMIT 1`))[0]!.id;
    await waitFor(() => hostPidsWithMarker(m).length > 0, 30_000, 20);
    killMarked([m]);
    const done = await waitTerminal(c, user.token, jobId, 30_000);
    const logs = await getLogs(c, user.token, jobId);
    expect(logs.stdout.match(/ran-once/g)).toHaveLength(1);
    expect((await c.sql<{ attempt: number }>('SELECT attempt FROM jobs WHERE id = $1', jobId))[0]!.attempt).toBe(2);
    expect(done.status).toBe('failed'); // killed by the test above, by signal: the point is it ran once
  });
});
