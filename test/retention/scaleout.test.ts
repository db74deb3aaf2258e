// Retention runs in one process at a time, also with several processes on one
// PostgreSQL database: a run holds an advisory lock (RETENTION_LOCK_KEY) on a
// connection of its own. Two app instances share one database here; the test
// takes the lock itself to stand for "another process is running it".
// PostgreSQL only: with SQLite one process owns the database (DATA_DIR lock).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { RETENTION_LOCK_KEY } from '../../src/services/retention.js';
import { runJob } from '../helpers/jobs.js';
import { startServer, testServerEnv, waitFor, type TestServer } from '../helpers/server.js';

const DAY = 86_400_000;
const ENV = { RETENTION_JOBS_DAYS: '30', RETENTION_INTERVAL_MINUTES: '10080', RETENTION_BATCH_ROWS: '10' };

describe('retention with two processes on one PostgreSQL database', () => {
  let s: TestServer;
  let second: App;
  let holder: pg.Client;

  beforeAll(async () => {
    s = await startServer('postgresql', ENV);
    const config = loadConfig(testServerEnv(s.db, { ...ENV, PORT: '0' }));
    second = await buildApp(config, { log: createLogger('error'), worker: false });
    await second.start();
    holder = new pg.Client({ connectionString: s.db.url });
    await holder.connect();
  });

  afterAll(async () => {
    await holder?.end().catch(() => {});
    await second?.stop(0);
    await s?.stop();
  });

  async function oldJobs(n: number): Promise<string[]> {
    const user = await s.user('operator', { max_concurrent_jobs: 20 });
    const ids = (await Promise.all(Array.from({ length: n }, () => runJob(s, user.token, { name: 'old', command: ['echo', 'x'] })))).map((r) => r.job.id);
    await s.app.db.prisma.job.updateMany({ where: { id: { in: ids } }, data: { finishedAt: new Date(Date.now() - 40 * DAY) } });
    return ids;
  }

  it('a scheduled run skips while another process holds the lock; an admin run waits for it', async () => {
    const ids = await oldJobs(3);
    await holder.query('SELECT pg_advisory_lock($1)', [RETENTION_LOCK_KEY]);
    try {
      expect(await s.app.services.retention.tick()).toBeNull();
      expect(await second.services.retention.tick()).toBeNull();
      expect(await s.app.db.prisma.job.count({ where: { id: { in: ids } } })).toBe(3);

      // The admin's run waits on the lock (seen in pg_locks), and nothing is deleted meanwhile.
      const asked = s.request('POST', '/admin/retention/run', { token: s.adminToken });
      await waitFor(async () => {
        const r = await holder.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`, [RETENTION_LOCK_KEY]);
        return r.rows[0].n > 0;
      }, 15_000);
      expect(await s.app.db.prisma.job.count({ where: { id: { in: ids } } })).toBe(3);
      await holder.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK_KEY]);
      const res = await asked;
      expect(res.status, res.text).toBe(200);
      expect(res.body.jobs_deleted).toBe(3);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
    }
  });

  it('runs started at once in both processes delete each job once', async () => {
    const ids = await oldJobs(25);
    const [a, b] = await Promise.all([s.app.services.retention.tick(), second.services.retention.tick()]);
    const ran = [a, b].filter((r) => r !== null);
    expect(ran.length).toBeGreaterThan(0);
    expect(ran.reduce((n, r) => n + r!.jobsDeleted, 0)).toBe(25);
    expect(await s.app.db.prisma.job.count({ where: { id: { in: ids } } })).toBe(0);
  });
});
