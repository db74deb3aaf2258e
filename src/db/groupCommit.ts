// Group commit for single-job submissions. Every commit writes the jobs
// table and its six indexes to the WAL, and every Prisma call has a fixed
// cost, so under load the submissions that arrive together (one turn of
// the event loop, or while the previous write is in flight) are written as
// one multi-row INSERT. An idle server writes each submission at once.
import type { Database } from './client.js';
import { insertJobs, ROWS_PER_STATEMENT, type NewJobRow } from './insertJobs.js';

interface Waiting {
  row: NewJobRow;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface JobWriter {
  /** Resolves once the row is committed. */
  insert(row: NewJobRow): Promise<void>;
}

export function createJobWriter(db: Database): JobWriter {
  const waiting: Waiting[] = [];
  let scheduled = false;
  let writing = false;

  async function write(group: Waiting[]) {
    try {
      await insertJobs(db.provider, db.prisma, group.map((w) => w.row));
      for (const w of group) w.resolve();
    } catch (err) {
      if (group.length === 1) return group[0]!.reject(err);
      // One bad row must not fail the others: retry each alone, so every caller gets its own outcome.
      for (const w of group) await write([w]);
    }
  }

  async function drain() {
    scheduled = false;
    writing = true;
    try {
      while (waiting.length) {
        const group = waiting.splice(0, ROWS_PER_STATEMENT);
        await write(group);
      }
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
