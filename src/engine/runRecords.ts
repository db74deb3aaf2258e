// What a worker writes about a run: the process group once it starts (so a
// restarted node can kill orphans) and the outcome. Every write applies only
// while the job is still running here: a cancel or force-complete recorded
// elsewhere wins. On SQLite these are direct statements (see
// db/sqliteAdapter.ts); on PostgreSQL, Prisma calls.
import type { Database } from '../db/client.js';
import { sqliteTime } from '../db/insertJobs.js';
import type { FinalState } from '../services/jobs.js';

export interface OutputTotals {
  stdoutBytes: number;
  stderrBytes: number;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

export interface RunRecords {
  started(jobId: string, pid: number): Promise<void>;
  /** `output` is absent when the run broke before its output was counted. */
  finished(jobId: string, final: FinalState, output?: OutputTotals): Promise<void>;
}

export function createRunRecords(db: Database): RunRecords {
  const { direct, prisma } = db;
  if (direct) {
    return {
      started: (jobId, pid) => direct.transaction((sql) => void sql(`UPDATE jobs SET pid = ? WHERE id = ? AND status = 'running'`).run(pid, jobId)),
      finished: (jobId, final, output) =>
        direct.transaction((sql) => {
          const at = sqliteTime(new Date());
          if (!output) {
            sql(`UPDATE jobs SET status = ?, exit_code = ?, error = ?, finished_at = ?, pid = NULL WHERE id = ? AND status = 'running'`).run(final.status, final.exitCode, final.error, at, jobId);
            return;
          }
          sql(
            `UPDATE jobs SET status = ?, exit_code = ?, error = ?, finished_at = ?, pid = NULL,
               stdout_bytes = ?, stderr_bytes = ?, stdout_truncated = ?, stderr_truncated = ?
             WHERE id = ? AND status = 'running'`,
          ).run(final.status, final.exitCode, final.error, at, output.stdoutBytes, output.stderrBytes, output.stdoutTruncated ? 1 : 0, output.stderrTruncated ? 1 : 0, jobId);
        }),
    };
  }
  return {
    async started(jobId, pid) {
      await prisma.job.updateMany({ where: { id: jobId, status: 'running' }, data: { pid } });
    },
    async finished(jobId, final, output) {
      await prisma.job.updateMany({ where: { id: jobId, status: 'running' }, data: { ...final, ...output, finishedAt: new Date(), pid: null } });
    },
  };
}
