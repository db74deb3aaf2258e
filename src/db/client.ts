// One Prisma model API over two providers. Prisma fixes the provider per
// generated client, so each provider has its own client (generated from the
// same models, see scripts/derive-schemas.mjs); the rest of the code sees the
// SQLite client's type, which is structurally the same model API.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';
import type { Config } from '../config.js';
import { applyMigrations } from './migrate.js';

export type Db = SqliteClient;
export type Provider = Config['database']['provider'];

export interface Database {
  readonly prisma: Db;
  readonly provider: Provider;
  close(): Promise<void>;
}

export async function openDatabase(target: Config['database'], log?: (msg: string) => void): Promise<Database> {
  if (target.provider === 'sqlite') {
    mkdirSync(dirname(target.file), { recursive: true });
    await applyMigrations(target, log);
    // Only the provider in use is loaded: each client carries its own query compiler.
    const [{ PrismaClient }, { cachingSqliteAdapter }] = await Promise.all([import('../generated/sqlite/client.js'), import('./sqliteAdapter.js')]);
    const prisma = new PrismaClient({ adapter: cachingSqliteAdapter(target.file, 10_000) });
    // WAL lets readers run beside the single writer; NORMAL sync is durable
    // across process crashes (only an OS crash can lose the last commits).
    await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
    await prisma.$queryRawUnsafe('PRAGMA synchronous = NORMAL');
    await prisma.$queryRawUnsafe('PRAGMA foreign_keys = ON');
    return { prisma, provider: 'sqlite', close: () => prisma.$disconnect() };
  }
  await applyMigrations(target, log);
  const [{ PrismaClient }, { PrismaPg }] = await Promise.all([import('../generated/postgres/client.js'), import('@prisma/adapter-pg')]);
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: target.url, max: 20 }) }) as unknown as Db;
  return { prisma, provider: 'postgresql', close: () => prisma.$disconnect() };
}
