// What a worker writes about a run: the process group once it starts (so a
// restarted node can kill orphans) and the outcome. Every write names the
// attempt and applies only while that attempt still runs: a write from a
// worker that lost its lease (its jobs were reaped, or claimed again) is
// refused, and the caller learns so from the `false` it gets back.
// Transient database failures are retried until the write lands or the
// worker's lease is gone (`giveUp`): a database outage never becomes an
// outcome. On SQLite these are direct statements (see db/sqliteAdapter.ts);
// on PostgreSQL, Prisma calls.
import type { Database } from '../db/client.js';
import { sqliteTime } from '../db/insertRows.js';
import { retryTransient } from '../db/retry.js';
import type { FinalState } from '../services/jobs.js';

export interface OutputTotals {
  stdoutBytes: number;
  stderrBytes: number;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** One run: a job and the attempt this worker claimed. */
export interface RunRef {
  id: string;
  attempt: number;
}

export interface RunRecords {
  /** False when the attempt is no longer current (fenced). */
  started(run: RunRef, pid: number): Promise<boolean>;
  /** `output` is absent when the run broke before its output was counted. False when fenced. */
  finished(run: RunRef, final: FinalState, output?: OutputTotals): Promise<boolean>;
  /** Gives back a run that never started: the job is pending again, for any worker to claim. */
  release(run: RunRef): Promise<boolean>;
}

// A claimed job that has neither a process nor any output never started.
const NOT_STARTED = `pid IS NULL AND NOT EXISTS (SELECT 1 FROM job_log_chunks c WHERE c.job_id = jobs.id)`;

export function createRunRecords(db: Database, giveUp: () => boolean): RunRecords {
  const { direct, prisma } = db;
  const retried = <T>(fn: () => Promise<T>) => retryTransient(fn, { giveUp });
  if (direct) {
    return {
      started: (run, pid) =>
        direct.transaction((sql) => sql(`UPDATE jobs SET pid = ? WHERE id = ? AND attempt = ? AND status = 'running'`).run(pid, run.id, run.attempt).changes > 0),
      finished: (run, final, output) =>
        direct.transaction((sql) => {
          const at = sqliteTime(new Date());
          const totals = output
            ? [output.stdoutBytes, output.stderrBytes, output.stdoutTruncated ? 1 : 0, output.stderrTruncated ? 1 : 0]
            : null;
          const set = totals ? ', stdout_bytes = ?, stderr_bytes = ?, stdout_truncated = ?, stderr_truncated = ?' : '';
          return (
            sql(`UPDATE jobs SET status = ?, exit_code = ?, error = ?, finished_at = ?, pid = NULL, stop_request = NULL${set} WHERE id = ? AND attempt = ? AND status = 'running'`)
              .run(final.status, final.exitCode, final.error, at, ...(totals ?? []), run.id, run.attempt).changes > 0
          );
        }),
      release: (run) =>
        direct.transaction(
          (sql) =>
            sql(`UPDATE jobs SET status = 'pending', started_at = NULL, worker_id = NULL WHERE id = ? AND attempt = ? AND status = 'running' AND ${NOT_STARTED}`).run(run.id, run.attempt).changes > 0,
        ),
    };
  }
  return {
    started: (run, pid) =>
      retried(async () => (await prisma.job.updateMany({ where: { id: run.id, attempt: run.attempt, status: 'running' }, data: { pid } })).count > 0),
    finished: (run, final, output) =>
      retried(
        async () =>
          (await prisma.job.updateMany({ where: { id: run.id, attempt: run.attempt, status: 'running' }, data: { ...final, ...output, finishedAt: new Date(), pid: null, stopRequest: null } })).count > 0,
      ),
    release: (run) =>
      retried(
        async () =>
          (await prisma.$executeRawUnsafe(
            `UPDATE jobs SET status = 'pending', started_at = NULL, worker_id = NULL WHERE id = $1 AND attempt = $2 AND status = 'running' AND ${NOT_STARTED}`,
            run.id,
            run.attempt,
          )) > 0,
      ),
  };
}
