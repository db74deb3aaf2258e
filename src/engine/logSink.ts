// Where a running job's output goes: appended to storage in batches with a
// per-job sequence number, then published (after the write, so a
// subscriber that replays storage and then follows live sees no gap).
//
// Rows go in as one raw multi-row INSERT: Prisma's createMany compiles a
// fresh query plan (WASM) whenever the row count changes, which cost more
// than SQLite's own work for a log flood.
import type { Database } from '../db/client.js';
import type { EventBus } from '../events/bus.js';
import { storableText } from '../services/jobSpec.js';
import { forgetPrismaDebugHistory } from './prismaDebugHistory.js';
import type { OutputSink } from './runner.js';

// Well under both providers' bound-parameter limits (5 per row).
const ROWS_PER_STATEMENT = 100;

/** The text the SQLite adapter itself writes for a DateTime (see db/insertJobs.ts). */
const sqliteTime = (d: Date) => d.toISOString().replace('Z', '+00:00');

export function createLogSink(db: Database, bus: EventBus, jobId: string): OutputSink {
  let seq = 0;
  const pg = db.provider === 'postgresql';
  return {
    async write(chunks) {
      const at = new Date();
      const atParam = pg ? at : sqliteTime(at);
      const first = seq + 1;
      // Taken before writing, like the rows: a failed batch leaves a gap rather than a seq used twice.
      seq += chunks.length;
      const data = chunks.map((c) => storableText(c.data));
      for (let i = 0; i < chunks.length; ) {
        const params: unknown[] = [];
        const values: string[] = [];
        do {
          const n = params.push(jobId, first + i, chunks[i]!.stream, data[i], atParam);
          values.push(pg ? `($${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})` : '(?, ?, ?, ?, ?)');
          i++;
        } while (i < chunks.length && values.length < ROWS_PER_STATEMENT);
        await db.prisma.$executeRawUnsafe(`INSERT INTO job_log_chunks (job_id, seq, stream, data, at) VALUES ${values.join(', ')}`, ...params);
      }
      await forgetPrismaDebugHistory();
      const iso = at.toISOString();
      for (let i = 0; i < chunks.length; i++) bus.publish('job.log', { jobId, seq: first + i, stream: chunks[i]!.stream, data: data[i]!, at: iso }, jobId);
    },
  };
}
