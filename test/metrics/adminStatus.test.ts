// The admin status: the queue as the database has it, every worker with its
// lease and the jobs it runs, and this process's isolation, the same over
// REST and GraphQL; admins only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit, waitRunning, waitTerminal } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('GET /admin/status and adminStatus', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite', { DEFAULT_MAX_CONCURRENT_JOBS: '1' });
  });
  afterAll(async () => s?.stop());

  it('shows the queue, the worker with its lease and running job, and the isolation; operators are refused', async () => {
    const op = await s.user('operator');
    const first = await submit(s, op.token, { command: ['sleep', '60'] });
    await waitRunning(s, op.token, first.id);
    const second = await submit(s, op.token, { command: ['sleep', '60'] });

    const res = await s.request('GET', '/admin/status', { token: s.adminToken });
    expect(res.status).toBe(200);
    const status = res.body;
    expect(status.database).toBe('sqlite');
    expect(status.queue).toEqual({ pending: 1, running: 1, oldest_pending_at: second.created_at });
    expect(status.workers).toHaveLength(1);
    const [worker] = status.workers;
    expect(worker.id).toBe(s.app.worker!.id);
    expect(worker).toMatchObject({ pid: process.pid, expired: false, running: 1 });
    expect(Date.parse(worker.lease_expires_at)).toBeGreaterThan(Date.parse(worker.heartbeat_at));
    const isolation = await s.request('GET', '/admin/isolation', { token: s.adminToken });
    expect(status.isolation).toEqual(isolation.body);

    const gql = await s.graphql('{ adminStatus { database queue { pending running oldestPendingAt } workers { id running expired } isolation { level } } }');
    expect(gql.errors).toBeUndefined();
    expect(gql.data.adminStatus).toEqual({
      database: 'sqlite',
      queue: { pending: 1, running: 1, oldestPendingAt: second.created_at },
      workers: [{ id: worker.id, running: 1, expired: false }],
      isolation: { level: status.isolation.level },
    });

    const refused = await s.request('GET', '/admin/status', { token: op.token });
    expect(refused.status).toBe(403);

    for (const job of [second, first]) {
      expect((await s.request('POST', `/jobs/${job.id}/cancel`, { token: op.token })).status).toBe(200);
      await waitTerminal(s, op.token, job.id);
    }
    const after = await s.request('GET', '/admin/status', { token: s.adminToken });
    expect(after.body.queue).toEqual({ pending: 0, running: 0, oldest_pending_at: null });
    expect(after.body.workers[0].running).toBe(0);
  });
});
