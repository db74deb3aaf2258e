// Issue #14, scenarios 1 and 6: a cancel that must reach a worker cut off
// from Redis, and a second SIGTERM that must not leave jobs unsupervised.
// Real worker processes; Redis cut through a proxy this test owns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJob, waitStatus } from '../helpers/jobs.js';
import { hostPidsWithMarker, killMarked, marker, survivorsAfter } from '../helpers/isolation.js';
import { waitFor } from '../helpers/server.js';
import { REDIS_URL, startCluster, type Cluster } from './cluster.js';
import { startProxy, type TcpProxy } from './tcpProxy.js';

describe('worker faults', () => {
  let c: Cluster;
  let redis: TcpProxy;
  const marks: string[] = [];

  beforeAll(async () => {
    c = await startCluster();
    const { hostname, port } = new URL(REDIS_URL);
    redis = await startProxy(hostname, Number(port));
  });
  afterAll(async () => {
    killMarked(marks);
    await c?.close();
    await redis?.close();
  });

  async function runningJob(token: string, m: string) {
    marks.push(m);
    const job = (await c.request('POST', '/jobs', { token, body: { name: 'held', command: ['sh', '-c', `echo up; sleep ${m}`], working_dir: c.workspace } })).body;
    await waitStatus(c, token, job.id, ['running'], 30_000);
    await waitFor(() => hostPidsWithMarker(m).length > 0, 10_000, 20);
    return job as { id: string };
  }

  it('scenario 1: cancel on a healthy API reaches a worker cut off from Redis: 200 canceled, its processes gone', async () => {
    await c.killWorkers();
    await c.startWorker({ REDIS_URL: redis.url('redis') });
    const user = await c.user(2);
    const m = marker('1111');
    const job = await runningJob(user.token, m);
    redis.cut();
    try {
      const res = await c.request('POST', `/jobs/${job.id}/cancel`, { token: user.token });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('canceled');
      expect(await survivorsAfter(m, 5000)).toEqual([]);
    } finally {
      redis.restore();
    }
  });

  it('a cancel whose kill a paused worker cannot confirm answers 202 with the job still running and cancel_requested, and the slot stays taken until the worker confirms', async () => {
    await c.killWorkers();
    const w = await c.startWorker();
    const user = await c.user(1);
    const m = marker('1112');
    const job = await runningJob(user.token, m);
    const next = (await c.request('POST', '/jobs', { token: user.token, body: { name: 'next', command: ['true'], working_dir: c.workspace } })).body;
    w.signal('SIGSTOP');
    try {
      const res = await c.request('POST', `/jobs/${job.id}/cancel`, { token: user.token });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ status: 'running', cancel_requested: true });
      // Nobody else may take the user's only slot while the job's processes may be alive.
      expect((await getJob(c, user.token, next.id)).status).toBe('pending');
    } finally {
      w.signal('SIGCONT');
    }
    const ended = await waitStatus(c, user.token, job.id, ['canceled', 'failed'], 30_000);
    expect(ended.status).not.toBe('running');
    expect(await survivorsAfter(m, 5000)).toEqual([]);
    await waitStatus(c, user.token, next.id, ['success'], 30_000);
  });

  it('scenario 6: a second SIGTERM kills the running jobs and records them "killed at worker shutdown" before the worker exits', async () => {
    await c.killWorkers();
    const w = await c.startWorker({ SHUTDOWN_GRACE_SECONDS: '60' });
    const user = await c.user(2);
    const m = marker('6661');
    const job = await runningJob(user.token, m);
    w.signal('SIGTERM');
    await waitFor(() => w.output().includes('waiting for running jobs'), 10_000, 20);
    w.signal('SIGTERM');
    const exit = await Promise.race([w.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    expect(exit).not.toBeNull();
    expect(exit!.code).toBe(130);
    // Recorded by the worker itself before it exited, not by a reaper later.
    const after = await getJob(c, user.token, job.id);
    expect(after.status).toBe('failed');
    expect(after.error).toBe('killed at worker shutdown');
    expect(await survivorsAfter(m, 2000)).toEqual([]);
  });
});
