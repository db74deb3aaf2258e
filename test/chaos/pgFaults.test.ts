// Issue #14, scenario 3: PostgreSQL connections terminated by an
// administrator (pg_terminate_backend) while jobs are submitted and write
// output. No submit may fail or be duplicated, no outcome may be "failed"
// because the database failed, and no log batch may be lost.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_ADMIN_URL } from '../helpers/db.js';
import { waitFor } from '../helpers/server.js';
import { startCluster, type Cluster } from './cluster.js';

const JOBS = 400;
const ROUNDS = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PostgreSQL connection loss', () => {
  let c: Cluster;

  beforeAll(async () => {
    c = await startCluster({ WORKER_CONCURRENCY: '8' });
  });
  afterAll(async () => {
    await c?.close();
  });

  it(`scenario 3: ${ROUNDS} rounds of pg_terminate_backend on every connection during ${JOBS} submissions: every submit and read answered, every job success with all its output`, { timeout: 180_000 }, async () => {
    await c.startWorker();
    const user = await c.user(8);
    const dbName = new URL(c.env.DATABASE_URL!).pathname.slice(1);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    let killed = 0;
    let submitting = true;
    const killer = (async () => {
      for (let round = 0; round < ROUNDS && submitting; round++) {
        await sleep(1500);
        const r = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
        killed += r.rowCount ?? 0;
      }
    })();

    // Each job writes several batches of output over a little while, so kills land mid-run.
    const command = ['sh', '-c', 'for i in 1 2 3 4 5 6; do echo "line $i of a job that writes in several batches"; sleep 0.05; done'];
    // Readers too: a read on a terminated connection must not become a 500.
    const readStatuses: number[] = [];
    const reader = (async () => {
      while (submitting) {
        const res = await c.request('GET', '/jobs/stats', { token: user.token });
        readStatuses.push(res.status);
        if (res.status !== 200) process.stderr.write(`read: ${res.status} ${res.text}\n`);
      }
    })();
    const statuses: number[] = [];
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < JOBS) {
          const n = next++;
          const res = await c.request('POST', '/jobs', { token: user.token, body: { name: `pg-${n}`, command, working_dir: c.workspace } });
          statuses.push(res.status);
          if (res.status === 202) ids.push(res.body.id);
          else process.stderr.write(`submit ${n}: ${res.status} ${res.text}\n`);
        }
      }),
    );
    submitting = false;
    await Promise.all([killer, reader]);
    await admin.end();
    expect(killed).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 202)).toEqual([]);
    expect(readStatuses.length).toBeGreaterThan(0);
    expect(readStatuses.filter((s) => s !== 200)).toEqual([]);

    await waitFor(async () => (await c.sql<{ n: number }>(`SELECT COUNT(*)::int AS n FROM jobs WHERE status IN ('pending', 'running')`))[0]!.n === 0, 120_000, 250);
    const jobs = await c.sql<{ id: string; name: string; status: string; error: string | null; stdout_bytes: number; stored: number; chunks: number; max_seq: number | null }>(
      `SELECT j.id, j.name, j.status, j.error, j.stdout_bytes,
              COALESCE(SUM(octet_length(c.data)), 0)::int AS stored, COUNT(c.seq)::int AS chunks, MAX(c.seq) AS max_seq
       FROM jobs j LEFT JOIN job_log_chunks c ON c.job_id = j.id GROUP BY j.id`,
    );
    // Nothing duplicated by a retried submit.
    expect(jobs).toHaveLength(JOBS);
    expect(new Set(jobs.map((j) => j.name)).size).toBe(JOBS);
    expect(jobs.filter((j) => j.status !== 'success').map((j) => `${j.name}: ${j.status} ${j.error}`)).toEqual([]);
    // Every byte counted is stored, in contiguous seqs.
    expect(jobs.filter((j) => j.stored !== j.stdout_bytes || j.stdout_bytes !== 6 * 'line 1 of a job that writes in several batches\n'.length).map((j) => `${j.name}: ${j.stored}/${j.stdout_bytes}`)).toEqual([]);
    expect(jobs.filter((j) => j.chunks !== (j.max_seq ?? 0)).map((j) => `${j.name}: ${j.chunks} chunks, last seq ${j.max_seq}`)).toEqual([]);
  });
});
