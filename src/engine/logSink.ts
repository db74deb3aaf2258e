// Where a running job's output goes: appended to storage in batches with a
// per-job sequence number, then published (after the write, so a
// subscriber that replays storage and then follows live sees no gap).
//
// A batch is stored only while its attempt still runs (fencing: a worker
// that lost its lease cannot add to a job someone else now owns); the
// sink then throws Fenced. A seq is consumed only by a stored chunk:
// transient database failures are retried with the same numbers, and a
// retry after a commit whose answer was lost finds the rows already there
// (ON CONFLICT DO NOTHING), so seqs stay contiguous.
//
// On SQLite a batch is one transaction of prepared single-row INSERTs on the
// direct connection (db/sqliteAdapter.ts). On PostgreSQL it is one raw
// multi-row INSERT: Prisma's createMany compiles a fresh query plan (WASM)
// whenever the row count changes, which cost more than the database's work.
import type { Database } from '../db/client.js';
import { sqliteTime } from '../db/insertRows.js';
import { retryTransient } from '../db/retry.js';
import type { EventBus } from '../events/bus.js';
import { storableText } from '../services/jobSpec.js';
import type { OutputSink, Stream } from './runner.js';
import type { RunRef } from './runRecords.js';

// Well under PostgreSQL's bound-parameter limit (4 per row plus 2).
const ROWS_PER_STATEMENT = 100;

/** The job's current attempt is no longer the one writing. */
export class Fenced extends Error {
  constructor(run: RunRef) {
    super(`job ${run.id} attempt ${run.attempt} no longer runs here`);
  }
}

interface Row { seq: number; stream: Stream; data: string }
/** Stores the rows; false when the attempt is not current (nothing stored). */
type Insert = (run: RunRef, rows: Row[], at: Date) => Promise<boolean>;

const CURRENT = `SELECT 1 FROM jobs WHERE id = ? AND attempt = ? AND status = 'running'`;

function inserter(db: Database): Insert {
  const { direct } = db;
  if (direct) {
    return (run, rows, at) =>
      direct.transaction((sql) => {
        if (!sql(CURRENT).get(run.id, run.attempt)) return false;
        const insert = sql('INSERT INTO job_log_chunks (job_id, seq, stream, data, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING');
        const when = sqliteTime(at);
        for (const r of rows) insert.run(run.id, r.seq, r.stream, r.data, when);
        return true;
      });
  }
  return async (run, rows, at) => {
    for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
      const part = rows.slice(start, start + ROWS_PER_STATEMENT);
      const params = part.flatMap((r) => [r.seq, r.stream, r.data]);
      const values = part.map((_, i) => `($${i * 3 + 5}::int, $${i * 3 + 6}::text, $${i * 3 + 7}::text)`);
      // One statement checks the attempt and inserts, so nothing can reap the job in between.
      const inserted = await db.prisma.$executeRawUnsafe(
        `INSERT INTO job_log_chunks (job_id, seq, stream, data, at)
         SELECT $1::text, v.seq, v.stream, v.data, $4::timestamp(3) FROM (VALUES ${values.join(', ')}) AS v(seq, stream, data)
         WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1::text AND attempt = $2::int AND status = $3::text)
         ON CONFLICT DO NOTHING`,
        run.id, run.attempt, 'running', at, ...params,
      );
      // Fewer rows is either "fenced" or "there already" (a retry after a lost answer); only the first matters.
      if (inserted < part.length && !(await db.prisma.job.count({ where: { id: run.id, attempt: run.attempt, status: 'running' } }))) return false;
    }
    return true;
  };
}

export function createLogSink(db: Database, bus: EventBus, run: RunRef, giveUp: () => boolean): OutputSink {
  const insert = inserter(db);
  let stored = 0;
  return {
    async write(chunks) {
      const at = new Date();
      const rows = chunks.map((c, i) => ({ seq: stored + i + 1, stream: c.stream, data: storableText(c.data) }));
      if (!(await retryTransient(() => insert(run, rows, at), { giveUp }))) throw new Fenced(run);
      stored += rows.length;
      const iso = at.toISOString();
      for (const r of rows) bus.publish('job.log', { jobId: run.id, seq: r.seq, stream: r.stream, data: r.data, at: iso }, run.id);
    },
  };
}
