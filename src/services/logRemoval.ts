// Removing a job's stored output, shared by retention (services/retention.ts)
// and quota eviction (services/logQuota.ts). The job is marked first
// (logs_removed_at), so from then on its logs answer 410 naming that time
// instead of a partial text; the chunks then go a bounded number of rows per
// statement, so a writer waiting behind one (a submission on SQLite) waits
// for at most that many rows.
import type { Database } from '../db/client.js';
import { Gone } from '../errors.js';

/** What removing took: jobs newly marked and chunk rows deleted. */
interface Removed {
  jobs: number;
  chunks: number;
}

/** The answer to reading the logs of a job whose output was removed. */
export function logsGone(job: { id: string; logsRemovedAt: Date }): Gone {
  return new Gone(
    `The output of job ${job.id} was removed at ${job.logsRemovedAt.toISOString()} (log retention, or the per-user log quota); ` +
      `the job itself is kept: GET /jobs/${job.id}`,
  );
}

/**
 * Lets pending requests run. A SQLite statement completes synchronously, so a
 * chain of awaited statements never leaves the microtask queue: without this a
 * whole run would hold every request up until it ends.
 */
export const yieldToOthers = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Deletes at most `limit` chunk rows of `jobIds`; returns how many went. */
function chunkDeleter(db: Database): (jobIds: string[], limit: number) => Promise<number> {
  if (db.provider === 'postgresql') {
    // By tuple id: a TID scan over the picked rows, whatever the planner thinks of the IN list.
    return (jobIds, limit) =>
      db.prisma.$executeRawUnsafe(
        `DELETE FROM job_log_chunks WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM job_log_chunks WHERE job_id IN (SELECT json_array_elements_text($1::json)) LIMIT $2::int))`,
        JSON.stringify(jobIds), limit,
      );
  }
  return (jobIds, limit) =>
    db.prisma.$executeRawUnsafe(
      `DELETE FROM job_log_chunks WHERE rowid IN (
         SELECT rowid FROM job_log_chunks WHERE job_id IN (SELECT value FROM json_each(?)) LIMIT ?)`,
      JSON.stringify(jobIds), limit,
    );
}

export function createLogRemoval(db: Database, batchRows: number) {
  const deleteChunks = chunkDeleter(db);

  /** Deletes every chunk of `jobIds`, `batchRows` rows per statement. */
  async function purgeChunks(jobIds: string[]): Promise<number> {
    let total = 0;
    for (let start = 0; start < jobIds.length; start += batchRows) {
      const ids = jobIds.slice(start, start + batchRows);
      for (;;) {
        const n = await deleteChunks(ids, batchRows);
        total += n;
        await yieldToOthers();
        if (n < batchRows) break;
      }
    }
    return total;
  }

  /** Marks the jobs' output removed at `at` (those not marked yet), then deletes it. */
  async function remove(jobIds: string[], at: Date): Promise<Removed> {
    let jobs = 0;
    for (let start = 0; start < jobIds.length; start += batchRows) {
      const ids = jobIds.slice(start, start + batchRows);
      jobs += (await db.prisma.job.updateMany({ where: { id: { in: ids }, logsRemovedAt: null }, data: { logsRemovedAt: at } })).count;
      await yieldToOthers();
    }
    return { jobs, chunks: await purgeChunks(jobIds) };
  }

  return { remove, purgeChunks };
}

export type LogRemoval = ReturnType<typeof createLogRemoval>;
