// One Prisma model API over two providers. Prisma fixes the provider per
// generated client, so each provider has its own client (generated from the
// same models, see scripts/derive-schemas.mjs); the rest of the code sees the
// SQLite client's type, which is structurally the same model API.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';
import type { Config } from '../config.js';
import { applyMigrations } from './migrate.js';
import { retryTransient } from './retry.js';
import type { DirectSqlite } from './sqliteAdapter.js';

export type Db = SqliteClient;
export type Provider = Config['database']['provider'];

export interface Database {
  readonly prisma: Db;
  readonly provider: Provider;
  /** SQLite only: synchronous statements on Prisma's own connection (see sqliteAdapter.ts). */
  readonly direct?: DirectSqlite;
  close(): Promise<void>;
}

const READS = new Set(['findUnique', 'findUniqueOrThrow', 'findFirst', 'findFirstOrThrow', 'findMany', 'count', 'aggregate', 'groupBy']);

export async function openDatabase(target: Config['database'], log?: (msg: string) => void): Promise<Database> {
  if (target.provider === 'sqlite') {
    mkdirSync(dirname(target.file), { recursive: true });
    await applyMigrations(target, log);
    // Only the provider in use is loaded: each client carries its own query compiler.
    const [{ PrismaClient }, { cachingSqliteAdapter }] = await Promise.all([import('../generated/sqlite/client.js'), import('./sqliteAdapter.js')]);
    const { adapter, direct } = cachingSqliteAdapter(target.file, 10_000);
    const prisma = new PrismaClient({ adapter });
    // WAL lets readers run beside the single writer; NORMAL sync is durable
    // across process crashes (only an OS crash can lose the last commits).
    await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
    await prisma.$queryRawUnsafe('PRAGMA synchronous = NORMAL');
    // NORMAL syncs only at checkpoints, and a sync costs tens of ms on a
    // virtual disk: fold the WAL back every ~40 MB instead of SQLite's 4 MB,
    // so a busy queue pays for a checkpoint every few seconds, not every 140 commits.
    await prisma.$queryRawUnsafe('PRAGMA wal_autocheckpoint = 10000');
    await prisma.$queryRawUnsafe('PRAGMA foreign_keys = ON');
    return { prisma, provider: 'sqlite', direct, close: () => prisma.$disconnect() };
  }
  // A server starting during a failover or connection purge waits it out rather than exiting.
  await retryTransient(() => applyMigrations(target, log));
  const [{ PrismaClient }, { PrismaPg }] = await Promise.all([import('../generated/postgres/client.js'), import('@prisma/adapter-pg')]);
  const client = new PrismaClient({ adapter: new PrismaPg({ connectionString: target.url, max: 20 }) });
  // A read on a connection the server just terminated fails though the next
  // connection would answer: reads are retried a few times, so a database
  // blip does not become a 500. (Writes retry where they are idempotent: see retry.ts.)
  const prisma = client.$extends({
    query: {
      $allModels: {
        $allOperations: ({ operation, args, query }) => (READS.has(operation) ? retryTransient(() => query(args), { attempts: 3 }) : query(args)),
      },
    },
  }) as unknown as Db;
  return { prisma, provider: 'postgresql', close: () => client.$disconnect() };
}
