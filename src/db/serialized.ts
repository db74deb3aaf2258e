// Runs a transaction that must not interleave with another of the same kind
// (check-then-write rules such as "keep one active admin"). PostgreSQL:
// a transaction-scoped advisory lock, so it holds across processes. SQLite:
// one process owns the file, so an in-process queue per key is enough.
import type { Database, Db } from './client.js';

type Tx = Parameters<Parameters<Db['$transaction']>[0]>[0];

const queues = new Map<string, Promise<unknown>>();

function lockId(key: string): number {
  let h = 0;
  for (const c of key) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return h;
}

export function serialized<T>(db: Database, key: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (db.provider === 'postgresql') {
    return db.prisma.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${lockId(key)})`);
      return fn(tx);
    });
  }
  const previous = queues.get(key) ?? Promise.resolve();
  const run = previous.catch(() => {}).then(() => db.prisma.$transaction((tx) => fn(tx)));
  const tail = run.catch(() => {});
  queues.set(key, tail);
  void tail.then(() => queues.get(key) === tail && queues.delete(key));
  return run;
}
