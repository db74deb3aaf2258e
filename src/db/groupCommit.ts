// Group commit: rows that arrive together (one turn of the event loop, or
// while the previous write is in flight) are written by one statement. Every
// commit writes the table and its indexes to the WAL, and every Prisma call
// has a fixed cost, so under load this is what keeps submissions (and their
// audit entries) cheap. An idle server writes each row at once. A write is
// retried through transient database failures, so it must be idempotent:
// rows carry their own ids and a retried insert skips the ones already there.
import type { Database } from './client.js';
import { insertJobs, JOBS_TABLE, type NewJobRow } from './insertJobs.js';
import { retryTransient } from './retry.js';

interface Waiting<T> {
  row: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface GroupWriter<T> {
  /** Resolves once the row is committed. */
  insert(row: T): Promise<void>;
}

export function createGroupWriter<T>(write: (rows: T[]) => Promise<unknown>, maxRows: number): GroupWriter<T> {
  const waiting: Waiting<T>[] = [];
  let scheduled = false;
  let writing = false;

  async function commit(group: Waiting<T>[]) {
    try {
      const rows = group.map((w) => w.row);
      await retryTransient(() => write(rows));
      for (const w of group) w.resolve();
    } catch (err) {
      if (group.length === 1) return group[0]!.reject(err);
      // One bad row must not fail the others: retry each alone, so every caller gets its own outcome.
      for (const w of group) await commit([w]);
    }
  }

  async function drain() {
    scheduled = false;
    writing = true;
    try {
      while (waiting.length) await commit(waiting.splice(0, maxRows));
    } finally {
      writing = false;
    }
  }

  return {
    insert(row) {
      return new Promise<void>((resolve, reject) => {
        waiting.push({ row, resolve, reject });
        // setImmediate runs after this turn's I/O callbacks: the requests read together are written together.
        if (!scheduled && !writing) {
          scheduled = true;
          setImmediate(() => void drain());
        }
      });
    },
  };
}

export function createJobWriter(db: Database): GroupWriter<NewJobRow> {
  return createGroupWriter((rows) => insertJobs(db.provider, db.prisma, rows), JOBS_TABLE.rowsPerStatement);
}
