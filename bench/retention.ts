// Figure: retention, database size before and after one run over a history
// of 100,000 finished jobs (BENCH_RETENTION_JOBS), each with 2 stored chunks of
// 512 characters, finished evenly over the last 60 days, 50 users, and 1,000
// batches of 10 straddling the 30-day line. Policy: RETENTION_JOBS_DAYS=30,
// RETENTION_LOGS_DAYS=7, pages of 500 rows. The history is written straight
// into the database with SQL (generated server-side, no API), then
// `POST /admin/retention/run` runs the policy on `serve --no-worker`.
//
//  - SQLite, a database made by this version (auto_vacuum=INCREMENTAL): the
//    file plus its -wal before and after; the run vacuums incrementally and
//    checkpoints the WAL with TRUNCATE.
//  - SQLite, a database made before it (auto_vacuum=NONE): the same run; the
//    freed pages stay in the file (reused by new rows), shown as free bytes.
//  - PostgreSQL: jobs + job_log_chunks (heap, TOAST, indexes) before and
//    after; the space is left to autovacuum (reused, not returned).
//
// While each run goes on, one client submits jobs one after another: the
// slowest submission shows whether retention held submissions up.
// Sizes do not vary between runs, so each variant runs once.
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runIfMain } from './lib/figure.js';
import { http } from './lib/http.js';
import { loadSampler } from './lib/machine.js';
import { watchdog } from './lib/proc.js';
import { report, type FigureReport, type Row } from './lib/report.js';
import { login, tempDir, withServer } from './lib/server.js';
import { createPgDatabase, pgQuery } from './lib/cluster.js';
import { fmt } from './lib/stats.js';

const JOBS = Number(process.env.BENCH_RETENTION_JOBS ?? 100_000);
const POLICY = { RETENTION_JOBS_DAYS: '30', RETENTION_LOGS_DAYS: '7', RETENTION_BATCH_ROWS: '500', RETENTION_INTERVAL_MINUTES: '10080' };
// Seconds between two jobs' finishing times: JOBS spread over 60 days.
const STEP_S = (60 * 86_400) / JOBS;
// Jobs [BATCH_FROM, BATCH_FROM + 10,000) are in batches of 10: around the 30-day line.
const BATCH_FROM = Math.floor(JOBS / 2) - 5000;

interface Outcome {
  before: number;
  after: number;
  /** SQLite: free pages after the run, in bytes. */
  freeAfter: number | null;
  runMs: number;
  removed: { jobs_deleted: number; batches_deleted: number; logs_removed: number; chunks_deleted: number };
  slowestSubmitMs: number;
  submits: number;
}

const MB = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

function sqliteHistory(file: string): void {
  const db = new Database(file, { timeout: 30_000 });
  try {
    const now = `strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', printf('-%d seconds', CAST(i * ${STEP_S} AS INTEGER)))`;
    db.exec('BEGIN');
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 49)
      INSERT INTO users (id, email, password_hash, role, created_at) SELECT printf('bench-u-%02d', i), printf('u%02d@bench.example', i), 'x', 'operator', strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') FROM n`);
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
      INSERT INTO batches (id, name, owner_id, created_at)
      SELECT printf('bench-b-%05d', i), 'hist', printf('bench-u-%02d', i % 50), strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', printf('-%d seconds', CAST((${BATCH_FROM} + i * 10 + 9) * ${STEP_S} AS INTEGER))) FROM n`);
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${JOBS - 1})
      INSERT INTO jobs (id, name, command, env, working_dir, status, exit_code, owner_id, batch_id, created_at, started_at, finished_at, stdout_bytes, stderr_bytes)
      SELECT printf('bench-j-%07d', i), 'hist', '["true"]', '{}', '/nonexistent', 'success', 0, printf('bench-u-%02d', i % 50),
             CASE WHEN i >= ${BATCH_FROM} AND i < ${BATCH_FROM + 10_000} THEN printf('bench-b-%05d', (i - ${BATCH_FROM}) / 10) END,
             ${now}, ${now}, ${now}, 512, 512 FROM n`);
    for (const [seq, stream] of [[1, 'stdout'], [2, 'stderr']] as const) {
      db.exec(`INSERT INTO job_log_chunks (job_id, seq, stream, data, at) SELECT id, ${seq}, '${stream}', hex(randomblob(256)), finished_at FROM jobs WHERE id LIKE 'bench-j-%'`);
    }
    db.exec('COMMIT');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

async function pgHistory(url: string): Promise<void> {
  const at = (i: string) => `now() - (${i}) * interval '${STEP_S} seconds'`;
  await pgQuery(url, `INSERT INTO users (id, email, password_hash, role) SELECT format('bench-u-%s', lpad(i::text, 2, '0')), format('u%s@bench.example', i), 'x', 'operator' FROM generate_series(0, 49) i`);
  await pgQuery(url, `INSERT INTO batches (id, name, owner_id, created_at) SELECT format('bench-b-%s', lpad(i::text, 5, '0')), 'hist', format('bench-u-%s', lpad((i % 50)::text, 2, '0')), ${at(`${BATCH_FROM} + i * 10 + 9`)} FROM generate_series(0, 999) i`);
  await pgQuery(url, `INSERT INTO jobs (id, name, command, env, working_dir, status, exit_code, owner_id, batch_id, created_at, started_at, finished_at, stdout_bytes, stderr_bytes)
    SELECT format('bench-j-%s', lpad(i::text, 7, '0')), 'hist', '["true"]', '{}', '/nonexistent', 'success', 0, format('bench-u-%s', lpad((i % 50)::text, 2, '0')),
           CASE WHEN i >= ${BATCH_FROM} AND i < ${BATCH_FROM + 10_000} THEN format('bench-b-%s', lpad(((i - ${BATCH_FROM}) / 10)::text, 5, '0')) END,
           ${at('i')}, ${at('i')}, ${at('i')}, 512, 512 FROM generate_series(0, ${JOBS - 1}) i`);
  for (const [seq, stream] of [[1, 'stdout'], [2, 'stderr']] as const) {
    await pgQuery(url, `INSERT INTO job_log_chunks (job_id, seq, stream, data, at) SELECT id, ${seq}, '${stream}', substr(repeat(md5(random()::text), 16), 1, 512), finished_at FROM jobs`);
  }
  await pgQuery(url, 'ANALYZE');
}

const fileBytes = (file: string) => [file, `${file}-wal`].reduce((n, f) => n + (() => { try { return statSync(f).size; } catch { return 0; } })(), 0);

const PG_SIZE = `SELECT (pg_total_relation_size('jobs') + pg_total_relation_size('job_log_chunks'))::bigint AS bytes`;

/** Runs retention through the API while one client keeps submitting. */
async function runRetention(api: string): Promise<Pick<Outcome, 'runMs' | 'removed' | 'slowestSubmitMs' | 'submits'>> {
  const token = await login(api);
  const auth = { authorization: `Bearer ${token}` };
  let done = false;
  let slowest = 0;
  let submits = 0;
  const submitter = (async () => {
    while (!done) {
      const t = performance.now();
      const res = await http(`${api}/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'during', command: ['true'] }) });
      if (res.status !== 202) throw new Error(`submit during retention: ${res.status} ${res.text.slice(0, 200)}`);
      slowest = Math.max(slowest, performance.now() - t);
      submits++;
    }
  })();
  const t0 = performance.now();
  const res = await http(`${api}/admin/retention/run`, { method: 'POST', headers: auth, timeoutMs: 600_000 });
  const runMs = performance.now() - t0;
  done = true;
  await submitter;
  if (res.status !== 200) throw new Error(`retention run: ${res.status} ${res.text.slice(0, 300)}`);
  return { runMs, removed: res.json(), slowestSubmitMs: slowest, submits };
}

async function sqliteVariant(autoVacuum: 'incremental' | 'none'): Promise<Outcome> {
  const dir = tempDir(`retention-${autoVacuum}`);
  const file = join(dir, 'jobrunner.db');
  if (autoVacuum === 'none') {
    // As a database made before auto_vacuum was set: a table exists before the service migrates it.
    const db = new Database(file);
    db.pragma('page_size = 16384');
    db.exec('CREATE TABLE bench_made_before (x)');
    db.close();
  }
  try {
    return await withServer({ noWorker: true, label: `retention-${autoVacuum}`, env: { ...POLICY, DATABASE_URL: `file:${file}` } }, async (s) => {
      sqliteHistory(file);
      const before = fileBytes(file);
      const run = await runRetention(s.api);
      const after = fileBytes(file);
      const db = new Database(file, { readonly: true });
      const free = Number(db.pragma('freelist_count', { simple: true })) * Number(db.pragma('page_size', { simple: true }));
      db.close();
      return { before, after, freeAfter: free, ...run };
    });
  } finally {
    if (!process.env.BENCH_KEEP_DATA) rmSync(dir, { recursive: true, force: true });
  }
}

async function pgVariant(): Promise<Outcome> {
  const pg = await createPgDatabase('jr_bench_retention');
  try {
    return await withServer({ noWorker: true, label: 'retention-pg', env: { ...POLICY, DATABASE_URL: pg.url } }, async (s) => {
      await pgHistory(pg.url);
      const before = Number((await pgQuery<{ bytes: string }>(pg.url, PG_SIZE))[0]!.bytes);
      const run = await runRetention(s.api);
      const after = Number((await pgQuery<{ bytes: string }>(pg.url, PG_SIZE))[0]!.bytes);
      return { before, after, freeAfter: null, ...run };
    });
  } finally {
    await pg.drop();
  }
}

export async function retention(): Promise<FigureReport> {
  const stopWatchdog = watchdog('retention', 10 * 60_000);
  const load = loadSampler();
  try {
    const incremental = await sqliteVariant('incremental');
    const none = await sqliteVariant('none');
    const postgres = await pgVariant();
    const ratio = (o: Outcome) => `${((o.after / o.before) * 100).toFixed(1)}%`;
    const removed = (o: Outcome) => `${o.removed.jobs_deleted} jobs, ${o.removed.batches_deleted} batches deleted; output of ${o.removed.logs_removed} removed (${o.removed.chunks_deleted} chunks)`;
    const rows: Row[] = [
      { metric: `SQLite file+WAL, ${JOBS} jobs (auto_vacuum=INCREMENTAL)`, ours: MB(incremental.after), baseline: `before ${MB(incremental.before)}`, ratio: ratio(incremental), target: 'smaller after the run', pass: incremental.after < incremental.before },
      { metric: 'SQLite file+WAL (auto_vacuum=NONE, an older database)', ours: MB(none.after), baseline: `before ${MB(none.before)}`, ratio: ratio(none), target: '— (free pages stay, reused)', pass: null },
      { metric: 'PostgreSQL jobs+chunks relations', ours: MB(postgres.after), baseline: `before ${MB(postgres.before)}`, ratio: ratio(postgres), target: '— (left to autovacuum)', pass: null },
      { metric: 'run time SQLite / PostgreSQL', ours: `${fmt(incremental.runMs / 1000)} s / ${fmt(postgres.runMs / 1000)} s`, baseline: '—', ratio: '—', target: '—', pass: null },
      { metric: 'slowest submit during the run, SQLite / PostgreSQL', ours: `${fmt(incremental.slowestSubmitMs)} ms / ${fmt(postgres.slowestSubmitMs)} ms`, baseline: '—', ratio: '—', target: '—', pass: null },
    ];
    return report({
      figure: 'retention',
      rows,
      notes: [
        `history: ${JOBS} finished jobs over 60 days, 2 × 512-character chunks each, 1000 batches of 10; policy RETENTION_JOBS_DAYS=30, RETENTION_LOGS_DAYS=7, pages of 500 rows`,
        `SQLite incremental: ${removed(incremental)}; ${incremental.submits} submissions during the run; free after ${MB(incremental.freeAfter ?? 0)}`,
        `SQLite none: ${removed(none)}; free pages after ${MB(none.freeAfter ?? 0)} (inside the file, reused by new rows); run ${fmt(none.runMs / 1000)} s`,
        `PostgreSQL: ${removed(postgres)}; ${postgres.submits} submissions during the run`,
      ],
      load: load.stop(),
    });
  } finally {
    stopWatchdog();
  }
}

runIfMain(import.meta.url, retention);
