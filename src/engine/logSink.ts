// Where a running job's output goes: appended to storage in batches with a
// per-job sequence number, then published (after the write, so a
// subscriber that replays storage and then follows live sees no gap).
//
// On SQLite a batch is one transaction of prepared single-row INSERTs on the
// direct connection (db/sqliteAdapter.ts). On PostgreSQL it is one raw
// multi-row INSERT: Prisma's createMany compiles a fresh query plan (WASM)
// whenever the row count changes, which cost more than the database's work.
import type { Database } from '../db/client.js';
import { sqliteTime } from '../db/insertJobs.js';
import type { EventBus } from '../events/bus.js';
import { storableText } from '../services/jobSpec.js';
import type { OutputSink, Stream } from './runner.js';

// Well under PostgreSQL's bound-parameter limit (5 per row).
const ROWS_PER_STATEMENT = 100;

interface Row { seq: number; stream: Stream; data: string }
type Insert = (jobId: string, rows: Row[], at: Date) => Promise<void>;

function inserter(db: Database): Insert {
  const { direct } = db;
  if (direct) {
    return (jobId, rows, at) =>
      direct.transaction((sql) => {
        const insert = sql('INSERT INTO job_log_chunks (job_id, seq, stream, data, at) VALUES (?, ?, ?, ?, ?)');
        const when = sqliteTime(at);
        for (const r of rows) insert.run(jobId, r.seq, r.stream, r.data, when);
      });
  }
  return async (jobId, rows, at) => {
    for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
      const part = rows.slice(start, start + ROWS_PER_STATEMENT);
      const params = part.flatMap((r) => [jobId, r.seq, r.stream, r.data, at]);
      const values = part.map((_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5})`);
      await db.prisma.$executeRawUnsafe(`INSERT INTO job_log_chunks (job_id, seq, stream, data, at) VALUES ${values.join(', ')}`, ...params);
    }
  };
}

export function createLogSink(db: Database, bus: EventBus, jobId: string): OutputSink {
  const insert = inserter(db);
  let seq = 0;
  return {
    async write(chunks) {
      const at = new Date();
      // Numbered before writing: a failed batch leaves a gap rather than a seq used twice.
      const rows = chunks.map((c) => ({ seq: ++seq, stream: c.stream, data: storableText(c.data) }));
      await insert(jobId, rows, at);
      const iso = at.toISOString();
      for (const r of rows) bus.publish('job.log', { jobId, seq: r.seq, stream: r.stream, data: r.data, at: iso }, jobId);
    },
  };
}
