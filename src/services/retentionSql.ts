// The pages retention walks, as SQL of its own: keyset pages in finishing
// (or, for batches, creation) order, so a run reads each old row once. On
// SQLite the finishing-time index is named (INDEXED BY): without statistics
// the planner would take the batch or status index and sort every old row for
// each page, and each statement blocks the process while it runs.
import type { Database } from '../db/client.js';
import { sqliteTime } from '../db/insertRows.js';
import { TERMINAL } from './jobSpec.js';

interface Position {
  at: Date;
  id: string;
}

/** The start of a walk: before every row. */
export const START: Position = { at: new Date(0), id: '' };

interface JobRow {
  id: string;
  at: Date;
  workingDir: string;
  ownsWorkingDir: boolean;
}

const TERMINAL_SQL = `(${TERMINAL.map((s) => `'${s}'`).join(', ')})`;

export function retentionPages(db: Database) {
  const pg = db.provider === 'postgresql';
  // Placeholders in order: t (time), s (text), n (integer).
  const sql = (text: string) => {
    let i = 0;
    return text.replace(/\{([tsn])\}/g, (_m, k: string) => (pg ? `$${++i}::${k === 't' ? 'timestamp(3)' : k === 's' ? 'text' : 'int'}` : '?'));
  };
  const time = (d: Date) => (pg ? d : sqliteTime(d));
  const finishedIndex = pg ? '' : 'INDEXED BY jobs_finished_at_logs_removed_at_idx';
  const after = `finished_at < {t} AND finished_at >= {t} AND (finished_at > {t} OR id > {s})`;
  const params = (cutoff: Date, from: Position, limit: number) => [time(cutoff), time(from.at), time(from.at), from.id, limit];
  const jobRow = (r: Record<string, unknown>): JobRow => ({
    id: String(r.id), at: new Date(r.finished_at as string | Date), workingDir: String(r.working_dir), ownsWorkingDir: r.owns_working_dir === true || r.owns_working_dir === 1,
  });

  const standaloneSql = sql(`SELECT id, finished_at, working_dir, owns_working_dir FROM jobs ${finishedIndex}
    WHERE ${after} AND batch_id IS NULL AND status IN ${TERMINAL_SQL} ORDER BY finished_at, id LIMIT {n}`);
  const withLogsSql = sql(`SELECT id, finished_at, working_dir, owns_working_dir FROM jobs ${finishedIndex}
    WHERE ${after} AND logs_removed_at IS NULL AND status IN ${TERMINAL_SQL} ORDER BY finished_at, id LIMIT {n}`);
  const batchesSql = sql(`SELECT id, created_at FROM batches b
    WHERE created_at < {t} AND created_at >= {t} AND (created_at > {t} OR id > {s})
      AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND NOT (j.status IN ${TERMINAL_SQL} AND j.finished_at < {t}))
    ORDER BY created_at, id LIMIT {n}`);

  return {
    /** Terminal jobs outside batches finished before `cutoff`, after `from`. */
    async standaloneJobs(cutoff: Date, from: Position, limit: number): Promise<JobRow[]> {
      return (await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(standaloneSql, ...params(cutoff, from, limit))).map(jobRow);
    },
    /** Terminal jobs finished before `cutoff` whose output is still stored, after `from`. */
    async jobsWithLogs(cutoff: Date, from: Position, limit: number): Promise<JobRow[]> {
      return (await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(withLogsSql, ...params(cutoff, from, limit))).map(jobRow);
    },
    /** Batches created before `cutoff` every job of which is terminal and finished before it, after `from`. */
    async finishedBatches(cutoff: Date, from: Position, limit: number): Promise<Position[]> {
      const rows = await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(batchesSql, time(cutoff), time(from.at), time(from.at), from.id, time(cutoff), limit);
      return rows.map((r) => ({ id: String(r.id), at: new Date(r.created_at as string | Date) }));
    },
  };
}
