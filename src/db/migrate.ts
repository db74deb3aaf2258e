// Applies the SQL migrations in prisma/migrations/<provider>/ at start-up.
// Prisma's CLI cannot fetch its schema engine on this network, so the service
// does what `prisma migrate deploy` would, and keeps the `_prisma_migrations`
// table in Prisma's format so the real CLI can take over at any time.
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createPrivateFile } from './fileModes.js';

export type Provider = 'sqlite' | 'postgresql';
export type MigrationTarget = { provider: 'sqlite'; file: string } | { provider: 'postgresql'; url: string };
export interface MigrationResult { applied: string[]; alreadyApplied: number }

interface Migration { name: string; sql: string; checksum: string }
interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: unknown;
  rolled_back_at: unknown;
}

// The key `prisma migrate deploy` locks with, so the service and the CLI never
// migrate the same database at the same time.
const PG_ADVISORY_LOCK_KEY = 72707369;

// Column set and types exactly as Prisma's schema engine creates them.
const SQLITE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`;
const PG_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;
const SELECT_ROWS = 'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"';

export function migrationsDir(provider: Provider): string {
  // Two levels up is the repository root both from src/db/ and dist/db/.
  return fileURLToPath(new URL(`../../prisma/migrations/${provider}`, import.meta.url));
}

/** Applies pending migrations from prisma/migrations/<provider>/ (or `dir`) in name order. */
export async function applyMigrations(
  target: MigrationTarget,
  log: (msg: string) => void = () => {},
  dir: string = migrationsDir(target.provider),
): Promise<MigrationResult> {
  const local = readMigrations(dir);
  const applied = target.provider === 'sqlite'
    ? applySqlite(target.file, local, log)
    : await applyPostgres(target.url, local, log);
  return { applied, alreadyApplied: local.length - applied.length };
}

function readMigrations(dir: string): Migration[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    // Prisma orders by folder name; the timestamp prefix makes that chronological.
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: sha256(sql) };
    });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Checks the recorded history against the files and returns what is still to
 * apply. Throws rather than guess when the history cannot be trusted.
 */
function pending(rows: AppliedRow[], local: Migration[]): Migration[] {
  // A rolled-back row does not count as applied, as in `prisma migrate deploy`.
  const live = rows.filter((r) => r.rolled_back_at == null);
  const failed = live.find((r) => r.finished_at == null);
  if (failed) {
    throw new Error(
      `Migration ${failed.migration_name} is recorded as started but not finished in _prisma_migrations; ` +
        'fix the database and mark it with `prisma migrate resolve` before starting again',
    );
  }
  const recorded = new Map(live.map((r) => [r.migration_name, r.checksum]));
  return local.filter((m) => {
    const checksum = recorded.get(m.name);
    if (checksum === undefined) return true;
    // Prisma tolerates a checkout that only changed line endings; so do we.
    const variants = [m.checksum, sha256(m.sql.replace(/\r\n/g, '\n')), sha256(m.sql.replace(/\r?\n/g, '\r\n'))];
    if (!variants.includes(checksum)) {
      throw new Error(
        `Migration ${m.name} was modified after it was applied: migration.sql has checksum ${m.checksum}, ` +
          `_prisma_migrations recorded ${checksum}. Restore the file and add a new migration instead.`,
      );
    }
    return false;
  });
}

function failure(m: Migration, err: unknown): Error {
  return new Error(`Migration ${m.name} failed and was rolled back: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function applySqlite(file: string, local: Migration[], log: (msg: string) => void): string[] {
  createPrivateFile(file); // 0600 before SQLite would make it (and its -wal, -shm) 0644
  // The timeout makes a second process wait for the first one's write lock
  // instead of failing with SQLITE_BUSY.
  const db = new Database(file, { timeout: 10_000 });
  try {
    // Only a new file takes it (a WAL database keeps the page size it was made with).
    db.pragma('page_size = 16384');
    // Likewise only a new file: retention can then hand freed pages back (PRAGMA incremental_vacuum).
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.exec(SQLITE_TABLE);
    const rows = db.prepare(SELECT_ROWS);
    const insert = db.prepare(
      `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
       VALUES (?, ?, ?, ?, ?, 1)`,
    );
    const applied: string[] = [];
    // One migration per IMMEDIATE transaction: it takes the write lock before
    // reading the history, so a concurrent starter sees our row and skips.
    const step = db.transaction((): Migration | undefined => {
      const next = pending(rows.all() as AppliedRow[], local)[0];
      if (!next) return undefined;
      const startedAt = Date.now();
      try {
        db.exec(next.sql);
      } catch (err) {
        throw failure(next, err);
      }
      // Prisma's engine stores SQLite timestamps as epoch milliseconds.
      insert.run(randomUUID(), next.checksum, Date.now(), next.name, startedAt);
      return next;
    });
    for (let m = step.immediate(); m; m = step.immediate()) {
      applied.push(m.name);
      log(`Applied migration ${m.name}`);
    }
    return applied;
  } finally {
    db.close();
  }
}

async function applyPostgres(url: string, local: Migration[], log: (msg: string) => void): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  // Failures reach us through the pending query; without a listener a dropped
  // connection would also surface as an uncaught 'error' event and crash.
  client.on('error', () => {});
  await client.connect();
  try {
    // Session-level lock, held until we are done (or the connection drops),
    // so a second process waits here and then finds nothing to do.
    await client.query('SELECT pg_advisory_lock($1)', [PG_ADVISORY_LOCK_KEY]);
    await client.query(PG_TABLE);
    const todo = pending((await client.query<AppliedRow>(SELECT_ROWS)).rows, local);
    const applied: string[] = [];
    for (const m of todo) {
      const startedAt = new Date();
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
           VALUES ($1, $2, clock_timestamp(), $3, $4, 1)`,
          [randomUUID(), m.checksum, m.name, startedAt],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw failure(m, err);
      }
      applied.push(m.name);
      log(`Applied migration ${m.name}`);
    }
    return applied;
  } finally {
    // Closing the session releases the advisory lock too.
    await client.end();
  }
}
