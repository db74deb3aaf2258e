// Retention: what the database keeps and for how long (RETENTION_* settings).
//
//  - Terminal jobs finished more than RETENTION_JOBS_DAYS ago are deleted:
//    output, run directory (DATA_DIR/runs/<id>, for jobs that got one) and row.
//    A batch goes whole, in one statement with its jobs, and only once every
//    one of its jobs is past the policy, so no reader ever sees its counts or
//    status change; until then its jobs stay.
//  - Output of terminal jobs finished more than RETENTION_LOGS_DAYS ago is
//    removed and the row kept; its logs then answer 410 naming when.
//
// One process at a time runs it: on PostgreSQL under an advisory lock held by
// a connection of its own (a scheduled run skips when another process holds
// it; a run asked for by an admin waits for it, bounded); SQLite has one
// process per database. Work goes in pages of RETENTION_BATCH_ROWS rows, one
// statement (one short transaction) each, so submissions are never blocked
// for long. SQLite then gets its space back (incremental vacuum when the
// database has auto_vacuum=INCREMENTAL, as new databases do; then a WAL
// checkpoint that truncates the -wal file); PostgreSQL is left to autovacuum.
//
// Age is the job's finished_at: tests simulate age by back-dating it.
import { rm, stat } from 'node:fs/promises';
import pg from 'pg';
import { z } from 'zod';
import { Conflict } from '../errors.js';
import type { AuditService } from './audit.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { TERMINAL } from './jobSpec.js';
import { yieldToOthers, type LogRemoval } from './logRemoval.js';
import { authorize } from './policy.js';
import { retentionPages, START } from './retentionSql.js';
import { parseInput } from './validation.js';

/** What one run removed. */
export interface RetentionReport {
  startedAt: Date;
  finishedAt: Date;
  jobsDeleted: number;
  batchesDeleted: number;
  /** Jobs whose output was removed (those deleted included). */
  logsRemoved: number;
  chunksDeleted: number;
  runDirsRemoved: number;
  /** Database size (SQLite: file plus WAL) before and after the run, in bytes. */
  databaseBytesBefore: number;
  databaseBytesAfter: number;
}

export interface DatabaseSize {
  provider: 'sqlite' | 'postgresql';
  /** SQLite: main file plus -wal; PostgreSQL: pg_database_size. */
  bytes: number;
  /** SQLite: the -wal file alone; null on PostgreSQL. */
  walBytes: number | null;
  /** SQLite: free pages inside the file, reusable or returned by incremental vacuum; null on PostgreSQL. */
  freeBytes: number | null;
  /** SQLite: none, full or incremental; null on PostgreSQL (autovacuum). */
  autoVacuum: string | null;
}

export interface UserStorage {
  userId: string;
  email: string | null;
  jobs: number;
  storedLogBytes: number;
  jobsWithLogsRemoved: number;
}

export interface StorageReport {
  database: DatabaseSize;
  totals: { jobs: number; storedLogBytes: number; jobsWithLogsRemoved: number };
  /** Users with jobs, most stored output first. */
  users: UserStorage[];
  policy: {
    jobDays: number | null;
    logDays: number | null;
    intervalMinutes: number;
    batchRows: number;
    logQuotaBytes: number | null;
    logQuotaMode: 'reject' | 'evict';
  };
}

/** The users a storage report lists at most (most stored output first). */
export const MAX_STORAGE_USERS = 1000;
export const DEFAULT_STORAGE_USERS = 100;
const storageInput = z.strictObject({ first: z.number().int().min(1).max(MAX_STORAGE_USERS).nullish() });

// Another process's run: `SELECT pg_advisory_lock` for at most this long before a 409.
const LOCK_WAIT_MS = 30_000;
/** The PostgreSQL advisory lock a run holds; any constant apart from the migration lock (72707369, db/migrate.ts). */
export const RETENTION_LOCK_KEY = 72707370;
// A batch holds at most 1000 jobs, so a page of batches reads at most 10,000 job ids.
const BATCHES_PER_PAGE = 10;
// Pages asked of one incremental_vacuum statement (16 KiB pages: 4 MiB at most). Run through the
// driver it may free fewer (as little as one page per call): the loop goes on while the freelist
// has pages, letting requests run between calls.
const VACUUM_PAGES = 256;
// The first scheduled run waits this long after start (or the interval, when shorter).
const FIRST_RUN_MS = 5 * 60_000;

const terminal = { in: [...TERMINAL] };
const num = (v: unknown) => Number(v ?? 0);

export function createRetentionService({ db, config, log }: ServiceDeps, removal: LogRemoval, audit: AuditService) {
  const prisma = db.prisma;
  const policy = config.retention;
  const { batchRows } = policy;
  const pages = retentionPages(db);
  // Chunks of jobs marked by a run that did not finish (a crash) are swept once by the next run of each process.
  let swept = false;
  let current: Promise<unknown> = Promise.resolve();
  let busy = false;

  const emptyReport = (startedAt: Date, bytes: number): RetentionReport => ({
    startedAt, finishedAt: startedAt, jobsDeleted: 0, batchesDeleted: 0, logsRemoved: 0, chunksDeleted: 0, runDirsRemoved: 0, databaseBytesBefore: bytes, databaseBytesAfter: bytes,
  });

  async function removeDirs(dirs: string[]): Promise<number> {
    let n = 0;
    for (const dir of dirs) {
      const there = await stat(dir).then(() => true, () => false);
      await rm(dir, { recursive: true, force: true });
      if (there) n++;
    }
    return n;
  }

  /** Batches every job of which finished before `cutoff`: output, run directories, then the batch with its jobs in one statement. */
  async function deleteBatches(cutoff: Date, at: Date, r: RetentionReport): Promise<void> {
    const allPast = { every: { status: terminal, finishedAt: { lt: cutoff } } };
    for (let from = START; ;) {
      const page = await pages.finishedBatches(cutoff, from, BATCHES_PER_PAGE);
      const jobs = await prisma.job.findMany({ where: { batchId: { in: page.map((b) => b.id) } }, select: { id: true, batchId: true, workingDir: true, ownsWorkingDir: true } });
      const removed = await removal.remove(jobs.map((j) => j.id), at);
      r.logsRemoved += removed.jobs;
      r.chunksDeleted += removed.chunks;
      r.runDirsRemoved += await removeDirs(jobs.filter((j) => j.ownsWorkingDir).map((j) => j.workingDir));
      for (const b of page) {
        // The condition again, in the statement: the batch goes only as it still is, with its jobs (at most 1000).
        const { count } = await prisma.batch.deleteMany({ where: { id: b.id, jobs: allPast } });
        await yieldToOthers();
        r.batchesDeleted += count;
        if (count) r.jobsDeleted += jobs.filter((j) => j.batchId === b.id).length;
      }
      if (page.length < BATCHES_PER_PAGE) return;
      from = page.at(-1)!;
    }
  }

  /** Jobs outside batches that finished before `cutoff`: output, run directory, row. */
  async function deleteJobs(cutoff: Date, at: Date, r: RetentionReport): Promise<void> {
    for (let from = START; ;) {
      const page = await pages.standaloneJobs(cutoff, from, batchRows);
      if (page.length === 0) return;
      const ids = page.map((j) => j.id);
      const removed = await removal.remove(ids, at);
      r.logsRemoved += removed.jobs;
      r.chunksDeleted += removed.chunks;
      r.runDirsRemoved += await removeDirs(page.filter((j) => j.ownsWorkingDir).map((j) => j.workingDir));
      const { count } = await prisma.job.deleteMany({ where: { id: { in: ids }, batchId: null, status: terminal, finishedAt: { lt: cutoff } } });
      await yieldToOthers();
      r.jobsDeleted += count;
      if (page.length < batchRows) return;
      from = page.at(-1)!;
    }
  }

  /** Output of terminal jobs (in batches or not) that finished before `cutoff`; the rows stay. */
  async function removeLogs(cutoff: Date, at: Date, r: RetentionReport): Promise<void> {
    for (let from = START; ;) {
      const page = await pages.jobsWithLogs(cutoff, from, batchRows);
      if (page.length === 0) return;
      const removed = await removal.remove(page.map((j) => j.id), at);
      r.logsRemoved += removed.jobs;
      r.chunksDeleted += removed.chunks;
      if (page.length < batchRows) return;
      from = page.at(-1)!;
    }
  }

  /** Chunks left behind by a run that marked jobs and then stopped (a crash). */
  async function sweepLeftovers(r: RetentionReport): Promise<void> {
    let after = '';
    for (;;) {
      const page = await prisma.job.findMany({ where: { logsRemovedAt: { not: null }, id: { gt: after } }, orderBy: { id: 'asc' }, take: batchRows, select: { id: true } });
      if (page.length === 0) return;
      r.chunksDeleted += await removal.purgeChunks(page.map((j) => j.id));
      if (page.length < batchRows) return;
      after = page.at(-1)!.id;
    }
  }

  async function firstRow(text: string): Promise<Record<string, unknown>> {
    const rows = await prisma.$queryRawUnsafe<Record<string, unknown>[]>(text);
    return rows[0] ?? {};
  }

  /** SQLite: free pages back to the file system (incremental vacuum), then the WAL folded in and truncated. */
  async function reclaimSqlite(): Promise<void> {
    if (num((await firstRow('PRAGMA auto_vacuum')).auto_vacuum) === 2) {
      while (num((await firstRow('PRAGMA freelist_count')).freelist_count) > 0) {
        await prisma.$queryRawUnsafe(`PRAGMA incremental_vacuum(${VACUUM_PAGES})`);
        await yieldToOthers();
      }
    }
    await firstRow('PRAGMA wal_checkpoint(TRUNCATE)');
  }

  async function databaseSize(): Promise<DatabaseSize> {
    if (config.database.provider === 'postgresql') {
      const row = await firstRow('SELECT pg_database_size(current_database())::bigint AS bytes');
      return { provider: 'postgresql', bytes: num(row.bytes), walBytes: null, freeBytes: null, autoVacuum: null };
    }
    const file = config.database.file;
    const size = (path: string) => stat(path).then((s) => s.size, () => 0);
    const [main, wal] = await Promise.all([size(file), size(`${file}-wal`)]);
    const pageSize = num((await firstRow('PRAGMA page_size')).page_size);
    const free = num((await firstRow('PRAGMA freelist_count')).freelist_count);
    const mode = ['none', 'full', 'incremental'][num((await firstRow('PRAGMA auto_vacuum')).auto_vacuum)] ?? 'none';
    return { provider: 'sqlite', bytes: main + wal, walBytes: wal, freeBytes: free * pageSize, autoVacuum: mode };
  }

  /** One run of the policy as configured now (`now`: the clock). */
  async function runPolicy(now: Date): Promise<RetentionReport> {
    const r = emptyReport(now, (await databaseSize()).bytes);
    const day = 86_400_000;
    if (!swept) {
      await sweepLeftovers(r);
      swept = true;
    }
    if (policy.jobDays !== null) {
      const cutoff = new Date(now.getTime() - policy.jobDays * day);
      await deleteBatches(cutoff, now, r);
      await deleteJobs(cutoff, now, r);
    }
    if (policy.logDays !== null) await removeLogs(new Date(now.getTime() - policy.logDays * day), now, r);
    if (db.provider === 'sqlite' && (r.chunksDeleted > 0 || r.jobsDeleted > 0)) await reclaimSqlite();
    r.databaseBytesAfter = (await databaseSize()).bytes;
    r.finishedAt = new Date();
    return r;
  }

  /**
   * Runs `body` holding the cluster-wide retention lock (PostgreSQL), or
   * answers null when another process holds it and `wait` is false.
   */
  async function locked<T>(wait: boolean, body: () => Promise<T>): Promise<T | null> {
    if (config.database.provider !== 'postgresql') return body();
    const client = new pg.Client({ connectionString: config.database.url });
    // Failures reach us through the pending query; a dropped connection also releases the lock.
    client.on('error', () => {});
    await client.connect();
    try {
      if (wait) {
        await client.query(`SET lock_timeout = ${LOCK_WAIT_MS}`);
        try {
          await client.query('SELECT pg_advisory_lock($1)', [RETENTION_LOCK_KEY]);
        } catch (err) {
          if ((err as { code?: string }).code === '55P03') throw new Conflict(`Retention is running in another process and did not finish within ${LOCK_WAIT_MS / 1000} s; try again later`);
          throw err;
        }
      } else if (!(await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RETENTION_LOCK_KEY])).rows[0]?.ok) {
        return null;
      }
      return await body();
    } finally {
      // Ending the session releases the lock.
      await client.end().catch(() => {});
    }
  }

  /** Runs after any run of this process (one at a time here too); null when another process held the lock and `wait` is false. */
  function exclusive(wait: boolean, now?: Date): Promise<RetentionReport | null> {
    const next = current.then(async () => {
      busy = true;
      try {
        return await locked(wait, () => runPolicy(now ?? new Date()));
      } catch (err) {
        // It may have stopped between marking jobs and deleting their chunks: the next run sweeps.
        swept = false;
        throw err;
      } finally {
        busy = false;
      }
    });
    current = next.catch(() => {});
    return next;
  }

  const counts = (r: RetentionReport) => ({
    jobsDeleted: r.jobsDeleted, batchesDeleted: r.batchesDeleted, logsRemoved: r.logsRemoved, chunksDeleted: r.chunksDeleted,
    runDirsRemoved: r.runDirsRemoved, databaseBytesBefore: r.databaseBytesBefore, databaseBytesAfter: r.databaseBytesAfter,
  });

  const removedAny = (r: RetentionReport) => r.jobsDeleted + r.batchesDeleted + r.logsRemoved + r.chunksDeleted + r.runDirsRemoved > 0;

  /** An admin's "run it now": waits for a run in progress (here or, bounded, elsewhere), then runs and reports. */
  async function run(viewer: Viewer): Promise<RetentionReport> {
    authorize(viewer, 'storage.manage');
    const base = { action: 'retention.run' as const, actorId: viewer.id, clientAddress: viewer.address, targetType: 'storage' as const, targetId: null };
    try {
      const r = (await exclusive(true))!;
      await audit.record({ ...base, outcome: 'success', detail: JSON.stringify(counts(r)) });
      log.info('retention run', { by: viewer.id, ...counts(r) });
      return r;
    } catch (err) {
      await audit.record({ ...base, outcome: 'failure' });
      throw err;
    }
  }

  /** A scheduled run: skipped when one is in progress here or in another process; audited when it removed anything or failed. */
  async function tick(now?: Date): Promise<RetentionReport | null> {
    if (busy) return null;
    const base = { action: 'retention.run' as const, actorId: null, clientAddress: null, targetType: 'storage' as const, targetId: null };
    try {
      const r = await exclusive(false, now);
      if (r && removedAny(r)) {
        await audit.record({ ...base, outcome: 'success', detail: JSON.stringify(counts(r)) });
        log.info('retention run', counts(r));
      }
      return r;
    } catch (err) {
      log.warn('retention run failed; retried at the next interval', { err: (err as Error).message });
      await audit.record({ ...base, outcome: 'failure' });
      return null;
    }
  }

  /**
   * Runs every RETENTION_INTERVAL_MINUTES (the first a few minutes after start) until the returned stop is called;
   * nothing is scheduled while no policy is set (an admin may still run it).
   */
  function schedule(): () => void {
    if (policy.jobDays === null && policy.logDays === null) return () => {};
    let timer: NodeJS.Timeout | null = null;
    const arm = (ms: number) => {
      timer = setTimeout(() => void tick().finally(() => timer && arm(policy.intervalMs)), ms);
      timer.unref();
    };
    arm(Math.min(FIRST_RUN_MS, policy.intervalMs));
    return () => {
      if (timer) clearTimeout(timer);
      timer = null;
    };
  }

  /** Stored output and jobs per user, the database's size and the policy in force. */
  async function storage(viewer: Viewer, raw: z.input<typeof storageInput>): Promise<StorageReport> {
    authorize(viewer, 'storage.manage');
    const { first } = parseInput(storageInput, raw);
    const limit = first ?? DEFAULT_STORAGE_USERS;
    const p = (n: number) => (db.provider === 'postgresql' ? `$${n}` : '?');
    const perUser = await prisma.$queryRawUnsafe<Record<string, unknown>[]>(
      `SELECT owner_id, COUNT(*) AS jobs,
              SUM(CASE WHEN logs_removed_at IS NULL THEN stdout_bytes + stderr_bytes ELSE 0 END) AS bytes,
              SUM(CASE WHEN logs_removed_at IS NULL THEN 0 ELSE 1 END) AS removed
       FROM jobs GROUP BY owner_id ORDER BY bytes DESC, owner_id LIMIT ${p(1)}`,
      limit,
    );
    const [total] = await prisma.$queryRawUnsafe<Record<string, unknown>[]>(
      `SELECT COUNT(*) AS jobs,
              SUM(CASE WHEN logs_removed_at IS NULL THEN stdout_bytes + stderr_bytes ELSE 0 END) AS bytes,
              SUM(CASE WHEN logs_removed_at IS NULL THEN 0 ELSE 1 END) AS removed
       FROM jobs`,
    );
    const emails = new Map(
      (await prisma.user.findMany({ where: { id: { in: perUser.map((u) => String(u.owner_id)) } }, select: { id: true, email: true } })).map((u) => [u.id, u.email]),
    );
    return {
      database: await databaseSize(),
      totals: { jobs: num(total?.jobs), storedLogBytes: num(total?.bytes), jobsWithLogsRemoved: num(total?.removed) },
      users: perUser.map((u) => ({
        userId: String(u.owner_id), email: emails.get(String(u.owner_id)) ?? null, jobs: num(u.jobs), storedLogBytes: num(u.bytes), jobsWithLogsRemoved: num(u.removed),
      })),
      policy: {
        jobDays: policy.jobDays, logDays: policy.logDays, intervalMinutes: policy.intervalMs / 60_000,
        batchRows, logQuotaBytes: policy.logQuotaBytes, logQuotaMode: policy.logQuotaMode,
      },
    };
  }

  return { run, tick, schedule, storage };
}

export type RetentionService = ReturnType<typeof createRetentionService>;
