// SQLite only (PostgreSQL leaves space to autovacuum, see the README): a
// database made by this version has auto_vacuum=INCREMENTAL, and a retention
// run that deleted output hands the freed pages back (incremental vacuum) and
// truncates the WAL, so the file plus its -wal shrink by about what was
// deleted. The old output is written straight into the database (8 MiB of
// chunks for one job) and its age simulated by back-dating finished_at.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';

const MiB = 1024 * 1024;

describe('retention gives SQLite space back', () => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startServer('sqlite', { RETENTION_JOBS_DAYS: '30', RETENTION_INTERVAL_MINUTES: '10080' });
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('after deleting 8 MiB of output the file plus -wal is at least 6 MiB smaller, with no free pages left', async () => {
    const user = await s.user('operator');
    const { job } = await runJob(s, user.token, { name: 'old', command: ['echo', 'x'] });
    const piece = 'y'.repeat(4096);
    for (let start = 0; start < 2048; start += 256) {
      await s.app.db.prisma.jobLogChunk.createMany({ data: Array.from({ length: 256 }, (_, i) => ({ jobId: job.id, seq: 1000 + start + i, stream: 'stdout', data: piece })) });
    }
    await s.app.db.prisma.job.update({ where: { id: job.id }, data: { finishedAt: new Date(Date.now() - 40 * 86_400_000) } });

    const before = (await s.request('GET', '/admin/storage', { token: s.adminToken })).body.database;
    expect(before.auto_vacuum).toBe('incremental');

    const run = await s.request('POST', '/admin/retention/run', { token: s.adminToken });
    expect(run.status, run.text).toBe(200);
    expect(run.body.jobs_deleted).toBe(1);
    expect(run.body.database_bytes_before - run.body.database_bytes_after).toBeGreaterThan(6 * MiB);

    const after = (await s.request('GET', '/admin/storage', { token: s.adminToken })).body.database;
    expect(after.free_bytes).toBe(0);
    expect(after.wal_bytes).toBeLessThan(MiB);
    expect(before.bytes - after.bytes).toBeGreaterThan(6 * MiB);
  });
});
