// Run directories whose job was deleted somewhere they could not be reached:
// in scale-out a purge or a retention run may happen in a process on another
// host, which deletes the row and cannot remove DATA_DIR/runs/<id> on the
// worker's host. Each worker removes them on its own host: when it starts,
// then hourly. Here the row is deleted with SQL, as such a process leaves it.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { sweepRunDirs } from '../../src/engine/leftovers.js';
import { createLogger } from '../../src/logger.js';
import { buildApp } from '../../src/server.js';
import { PROVIDERS } from '../helpers/db.js';
import { runJob } from '../helpers/jobs.js';
import { startServer, testServerEnv, waitFor, type TestServer } from '../helpers/server.js';

describe.each(PROVIDERS)('run directories of deleted jobs, on %s', (provider) => {
  let s: TestServer;
  let runs: string;
  beforeAll(async () => {
    s = await startServer(provider);
    runs = join(s.db.dataDir, 'runs');
  });
  afterAll(async () => {
    await s?.stop();
  });

  const ranJob = async (name: string) => {
    const { job } = await runJob(s, s.adminToken, { name, command: ['sh', '-c', 'echo kept > out.txt'] });
    expect(job.status).toBe('success');
    expect(job.working_dir).toBe(join(runs, job.id));
    expect(existsSync(join(job.working_dir, 'out.txt'))).toBe(true);
    return job;
  };

  it('are removed; the directories of jobs that exist, and anything not named by a job id, stay', async () => {
    const [gone, kept] = [await ranJob('gone'), await ranJob('kept')];
    mkdirSync(join(runs, 'not-a-job'));
    writeFileSync(join(runs, 'not-a-job', 'file'), 'mine');
    await s.app.db.prisma.job.delete({ where: { id: gone.id } });

    expect(await sweepRunDirs(s.app.db, runs, createLogger('error'))).toBe(1);
    expect(existsSync(gone.working_dir)).toBe(false);
    expect(existsSync(join(kept.working_dir, 'out.txt'))).toBe(true);
    expect(existsSync(join(runs, 'not-a-job', 'file'))).toBe(true);
    expect(await sweepRunDirs(s.app.db, runs, createLogger('error'))).toBe(0);
  });

  const pgOnly = provider === 'postgresql' ? '' : ' (skipped on SQLite: one process owns its database, so no second worker starts beside it)';
  it.runIf(provider === 'postgresql')(`a worker process starting on the host removes them without being asked${pgOnly}`, async () => {
    const job = await ranJob('deleted-elsewhere');
    await s.app.db.prisma.job.delete({ where: { id: job.id } });
    // Another worker on this host (same DATA_DIR, same database), as after a restart.
    const worker = await buildApp(loadConfig(testServerEnv(s.db)), { http: false, log: createLogger('error') });
    await worker.start();
    try {
      await waitFor(() => !existsSync(job.working_dir), 10_000);
    } finally {
      await worker.stop(0);
    }
  });
});
