// Guards the hand-written SQL migrations against drift from the Prisma schema:
// every provider's migrations, applied to an empty database, must produce
// exactly the tables, columns, keys and indexes Prisma expects. Also covers
// the migration runner's bookkeeping, checksum check, rollback and locking.
import { describe, it, expect, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { applyMigrations, migrationsDir, type MigrationTarget, type Provider } from '../../src/db/migrate.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA_FILE: Record<Provider, string> = {
  sqlite: join(ROOT, 'prisma/schema.prisma'),
  postgresql: join(ROOT, 'prisma/postgres/schema.prisma'),
};
const PG_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const PROVIDERS: Provider[] = ['sqlite', 'postgresql'];

// ---------------------------------------------------------------------------
// Prisma's own schema parser. `@prisma/internals` (getDMMF) is not installed,
// but the CLI ships the same Rust parser as prisma_schema_build_bg.wasm; its
// JS glue is bundled inside the CLI, so this is the few lines of it we need.
// The generated client's runtimeDataModel lacks nullability and indexes.

interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'object' | 'enum' | 'unsupported';
  type: string;
  isRequired: boolean;
  isList: boolean;
  hasDefaultValue: boolean;
  nativeType?: unknown;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
}
interface DmmfModel { name: string; dbName: string | null; fields: DmmfField[] }
interface DmmfIndex { model: string; type: 'id' | 'unique' | 'normal' | 'fulltext'; dbName?: string; fields: { name: string }[] }
interface Dmmf { datamodel: { models: DmmfModel[]; indexes: DmmfIndex[] } }

let wasm: {
  memory: WebAssembly.Memory;
  get_dmmf(ptr: number, len: number): [number, number, number, number];
  __wbindgen_malloc(size: number, align: number): number;
  __wbindgen_free(ptr: number, size: number, align: number): void;
  __wbindgen_externrefs: WebAssembly.Table;
  __externref_table_dealloc(idx: number): void;
  __wbindgen_start(): void;
} | undefined;

function getDmmf(schema: string): Dmmf {
  if (!wasm) {
    const prismaDir = dirname(createRequire(import.meta.url).resolve('prisma/package.json'));
    const module = new WebAssembly.Module(readFileSync(join(prismaDir, 'build/prisma_schema_build_bg.wasm')));
    const text = (ptr: number, len: number) => new TextDecoder().decode(new Uint8Array(wasm!.memory.buffer, ptr >>> 0, len));
    const imports = Object.fromEntries(WebAssembly.Module.imports(module).map(({ name }) => {
      // wasm-bindgen suffixes import names with a hash; match on the stem.
      if (name.startsWith('__wbg_Error_')) return [name, (p: number, l: number) => new Error(text(p, l))];
      if (name.startsWith('__wbg___wbindgen_throw_')) return [name, (p: number, l: number) => { throw new Error(text(p, l)); }];
      if (name.startsWith('__wbg_set_message_')) return [name, () => {}];
      if (name === '__wbindgen_init_externref_table') {
        return [name, () => {
          const table = wasm!.__wbindgen_externrefs;
          const at = table.grow(4);
          table.set(0, undefined);
          [undefined, null, true, false].forEach((v, i) => table.set(at + i, v));
        }];
      }
      throw new Error(`prisma_schema_build wasm wants an unknown import ${name}; update the glue in this test`);
    }));
    wasm = new WebAssembly.Instance(module, { __wbindgen_placeholder__: imports }).exports as unknown as typeof wasm;
    wasm!.__wbindgen_start();
  }
  const w = wasm!;
  const input = new TextEncoder().encode(JSON.stringify({ prismaSchema: [['schema.prisma', schema]], noColor: true }));
  const ptr = w.__wbindgen_malloc(input.length, 1);
  new Uint8Array(w.memory.buffer, ptr, input.length).set(input);
  const [outPtr, outLen, errIdx, isErr] = w.get_dmmf(ptr, input.length);
  if (isErr) {
    const err = w.__wbindgen_externrefs.get(errIdx) as Error;
    w.__externref_table_dealloc(errIdx);
    throw err;
  }
  try {
    return JSON.parse(new TextDecoder().decode(new Uint8Array(w.memory.buffer, outPtr, outLen))) as Dmmf;
  } finally {
    w.__wbindgen_free(outPtr, outLen, 1);
  }
}

// ---------------------------------------------------------------------------
// One shape for "what a database looks like", from the schema or from a DB.

interface Column { type: string; notNull: boolean; hasDefault: boolean }
interface Index { name: string; unique: boolean; columns: string[] }
interface ForeignKey { name?: string; columns: string[]; refTable: string; refColumns: string[]; onDelete: string; onUpdate: string }
interface Table { columns: Map<string, Column>; primaryKey: { name?: string; columns: string[] }; indexes: Index[]; foreignKeys: ForeignKey[] }
type Schema = Map<string, Table>;

// Column types Prisma generates for each scalar without a @db attribute.
const TYPES: Record<Provider, Record<string, string>> = {
  sqlite: { String: 'TEXT', Int: 'INTEGER', BigInt: 'BIGINT', Boolean: 'BOOLEAN', DateTime: 'DATETIME', Float: 'REAL', Decimal: 'DECIMAL', Bytes: 'BLOB' },
  postgresql: {
    String: 'text', Int: 'integer', BigInt: 'bigint', Boolean: 'boolean', DateTime: 'timestamp(3) without time zone',
    Float: 'double precision', Decimal: 'numeric(65,30)', Bytes: 'bytea', Json: 'jsonb',
  },
};

function expectedSchema(dmmf: Dmmf, provider: Provider): Schema {
  const models = new Map(dmmf.datamodel.models.map((m) => [m.name, m]));
  const table = (m: DmmfModel) => m.dbName ?? m.name;
  const column = (m: DmmfModel, field: string) => {
    const f = m.fields.find((x) => x.name === field)!;
    return f.dbName ?? f.name;
  };
  const schema: Schema = new Map();
  for (const m of dmmf.datamodel.models) {
    const t: Table = { columns: new Map(), primaryKey: { columns: [] }, indexes: [], foreignKeys: [] };
    for (const f of m.fields.filter((x) => x.kind === 'scalar')) {
      const type = TYPES[provider][f.type];
      // Fail loudly rather than skip: a new kind of field needs a mapping here.
      if (!type || f.nativeType || f.isList) throw new Error(`No expected column type for ${m.name}.${f.name} (${f.type}); extend TYPES`);
      t.columns.set(f.dbName ?? f.name, { type, notNull: f.isRequired, hasDefault: f.hasDefaultValue });
    }
    for (const f of m.fields.filter((x) => x.relationFromFields?.length)) {
      const target = models.get(f.type)!;
      const columns = f.relationFromFields!.map((n) => column(m, n));
      t.foreignKeys.push({
        name: `${table(m)}_${columns.join('_')}_fkey`,
        columns,
        refTable: table(target),
        refColumns: f.relationToFields!.map((n) => column(target, n)),
        // Prisma's defaults when @relation does not say.
        onDelete: f.relationOnDelete ?? (f.isRequired ? 'Restrict' : 'SetNull'),
        onUpdate: 'Cascade',
      });
    }
    schema.set(table(m), t);
  }
  for (const idx of dmmf.datamodel.indexes) {
    const m = models.get(idx.model)!;
    const t = schema.get(table(m))!;
    const columns = idx.fields.map((f) => column(m, f.name));
    const suffix = { id: 'pkey', unique: 'key', normal: 'idx', fulltext: 'idx' }[idx.type];
    const name = idx.dbName ?? `${table(m)}_${idx.type === 'id' ? '' : `${columns.join('_')}_`}${suffix}`;
    if (idx.type === 'id') t.primaryKey = { name, columns };
    else t.indexes.push({ name, unique: idx.type === 'unique', columns });
  }
  return schema;
}

const SQLITE_ACTIONS: Record<string, string> = { CASCADE: 'Cascade', RESTRICT: 'Restrict', 'SET NULL': 'SetNull', 'SET DEFAULT': 'SetDefault', 'NO ACTION': 'NoAction' };
const PG_ACTIONS: Record<string, string> = { c: 'Cascade', r: 'Restrict', n: 'SetNull', d: 'SetDefault', a: 'NoAction' };

function introspectSqlite(file: string): Schema {
  const db = new Database(file, { readonly: true });
  try {
    const all = <T>(sql: string, ...args: unknown[]) => db.prepare(sql).all(...args) as T[];
    const schema: Schema = new Map();
    const tables = all<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_prisma_migrations'`);
    for (const { name } of tables) {
      const cols = all<{ name: string; type: string; notnull: number; dflt_value: string | null; pk: number }>('SELECT * FROM pragma_table_info(?)', name);
      const indexes = all<{ name: string; unique: number; origin: string }>('SELECT * FROM pragma_index_list(?)', name)
        .filter((i) => i.origin !== 'pk')
        .map((i) => ({
          name: i.name,
          unique: i.unique === 1,
          columns: all<{ name: string }>('SELECT name FROM pragma_index_info(?) ORDER BY seqno', i.name).map((c) => c.name),
        }));
      const fkRows = all<{ id: number; table: string; from: string; to: string; on_delete: string; on_update: string }>(
        'SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq', name);
      const foreignKeys = [...new Set(fkRows.map((r) => r.id))].map((id) => {
        const rows = fkRows.filter((r) => r.id === id);
        // SQLite keeps no constraint names outside the CREATE TABLE text.
        return {
          columns: rows.map((r) => r.from), refTable: rows[0].table, refColumns: rows.map((r) => r.to),
          onDelete: SQLITE_ACTIONS[rows[0].on_delete], onUpdate: SQLITE_ACTIONS[rows[0].on_update],
        };
      });
      schema.set(name, {
        columns: new Map(cols.map((c) => [c.name, { type: c.type, notNull: c.notnull === 1, hasDefault: c.dflt_value !== null }])),
        primaryKey: { columns: cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name) },
        indexes,
        foreignKeys,
      });
    }
    return schema;
  } finally {
    db.close();
  }
}

async function introspectPostgres(url: string): Promise<Schema> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const q = async <T extends pg.QueryResultRow>(sql: string) => (await client.query<T>(sql)).rows;
    const inSchema = `n.nspname = current_schema()`;
    const schema: Schema = new Map();
    for (const { name } of await q<{ name: string }>(`
      SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${inSchema} AND c.relkind = 'r' AND c.relname <> '_prisma_migrations'`)) {
      schema.set(name, { columns: new Map(), primaryKey: { columns: [] }, indexes: [], foreignKeys: [] });
    }
    for (const c of await q<{ table: string; column: string; type: string; not_null: boolean; has_default: boolean }>(`
      SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
             a.attnotnull AS not_null, a.atthasdef AS has_default
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${inSchema} AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`)) {
      schema.get(c.table)?.columns.set(c.column, { type: c.type, notNull: c.not_null, hasDefault: c.has_default });
    }
    const columnsOf = (rel: string, keys: string) => `(SELECT array_agg(a.attname::text ORDER BY k.ord)
      FROM unnest(${keys}) WITH ORDINALITY AS k(attnum, ord) JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = k.attnum)`;
    for (const i of await q<{ table: string; name: string; unique: boolean; primary: boolean; columns: string[] }>(`
      SELECT t.relname AS table, i.relname AS name, x.indisunique AS unique, x.indisprimary AS primary,
             ${columnsOf('t.oid', 'x.indkey')} AS columns
      FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace WHERE ${inSchema}`)) {
      const t = schema.get(i.table);
      if (!t) continue;
      if (i.primary) t.primaryKey = { name: i.name, columns: i.columns };
      else t.indexes.push({ name: i.name, unique: i.unique, columns: i.columns });
    }
    for (const f of await q<{ table: string; name: string; ref_table: string; del: string; upd: string; columns: string[]; ref_columns: string[] }>(`
      SELECT t.relname AS table, c.conname AS name, r.relname AS ref_table, c.confdeltype AS del, c.confupdtype AS upd,
             ${columnsOf('c.conrelid', 'c.conkey')} AS columns, ${columnsOf('c.confrelid', 'c.confkey')} AS ref_columns
      FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace WHERE ${inSchema} AND c.contype = 'f'`)) {
      schema.get(f.table)?.foreignKeys.push({
        name: f.name, columns: f.columns, refTable: f.ref_table, refColumns: f.ref_columns,
        onDelete: PG_ACTIONS[f.del], onUpdate: PG_ACTIONS[f.upd],
      });
    }
    return schema;
  } finally {
    await client.end();
  }
}

/** Lists every difference, so one failing run shows all the drift at once. */
function drift(expected: Schema, actual: Schema, provider: Provider): string[] {
  const problems: string[] = [];
  const key = (x: unknown) => JSON.stringify(x);
  for (const name of actual.keys()) if (!expected.has(name)) problems.push(`table ${name} is not in the Prisma schema`);
  for (const [name, want] of expected) {
    const got = actual.get(name);
    if (!got) { problems.push(`table ${name} is missing`); continue; }
    for (const [col, c] of want.columns) {
      const g = got.columns.get(col);
      if (!g) problems.push(`column ${name}.${col} is missing`);
      else if (key(g) !== key(c)) problems.push(`column ${name}.${col} is ${key(g)}, expected ${key(c)}`);
    }
    for (const [col, g] of got.columns) {
      // An unknown NOT NULL column without default would make every Prisma insert fail.
      if (!want.columns.has(col)) problems.push(`column ${name}.${col} (${g.notNull && !g.hasDefault ? 'required' : 'optional'}) is not in the Prisma schema`);
    }
    // SQLite has no primary key or foreign key names to compare.
    const named = <T extends { name?: string }>(x: T) => (provider === 'sqlite' ? { ...x, name: undefined } : x);
    if (key(named(got.primaryKey)) !== key(named(want.primaryKey))) {
      problems.push(`primary key of ${name} is ${key(got.primaryKey)}, expected ${key(want.primaryKey)}`);
    }
    const sorted = <T>(xs: T[]) => xs.map(key).sort();
    const missing = (a: unknown[], b: unknown[], what: string) => {
      const bs = new Set(sorted(b));
      for (const x of sorted(a)) if (!bs.has(x)) problems.push(`${what} ${x}`);
    };
    missing(want.indexes, got.indexes, `${name}: missing index`);
    missing(got.indexes, want.indexes, `${name}: index not in the Prisma schema`);
    missing(want.foreignKeys.map(named), got.foreignKeys.map(named), `${name}: missing foreign key`);
    missing(got.foreignKeys.map(named), want.foreignKeys.map(named), `${name}: foreign key not in the Prisma schema`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Fresh databases.

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'schema-drift-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function freshDatabase(provider: Provider): Promise<MigrationTarget> {
  if (provider === 'sqlite') return { provider, file: join(tempDir(), 'test.db') };
  const name = `drift_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  cleanups.push(async () => {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { provider, url: url.toString() };
}

function introspect(target: MigrationTarget): Promise<Schema> | Schema {
  return target.provider === 'sqlite' ? introspectSqlite(target.file) : introspectPostgres(target.url);
}

/** _prisma_migrations rows, normalised across providers. */
async function historyRows(target: MigrationTarget) {
  const sql = 'SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count, logs FROM "_prisma_migrations" ORDER BY migration_name';
  type Row = { migration_name: string; checksum: string; finished_at: unknown; rolled_back_at: unknown; applied_steps_count: number; logs: string | null };
  if (target.provider === 'sqlite') {
    const db = new Database(target.file, { readonly: true });
    try { return db.prepare(sql).all() as Row[]; } finally { db.close(); }
  }
  const client = new pg.Client({ connectionString: target.url });
  await client.connect();
  try { return (await client.query<Row>(sql)).rows; } finally { await client.end(); }
}

function migrationNames(provider: Provider, dir = migrationsDir(provider)): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
}

function copyMigrations(provider: Provider): string {
  const dir = join(tempDir(), provider);
  cpSync(migrationsDir(provider), dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------

describe('Prisma schema parser (wasm)', () => {
  it('parses the schema and rejects invalid input', () => {
    const dmmf = getDmmf(readFileSync(SCHEMA_FILE.sqlite, 'utf8'));
    expect(dmmf.datamodel.models.map((m) => m.dbName)).toContain('jobs');
    expect(() => getDmmf('model Broken {\n  id Int @id\n  oops\n}\n')).toThrow(/P1012|Error validating/);
  });

  it('sees the same models in the derived PostgreSQL schema', () => {
    const [a, b] = PROVIDERS.map((p) => getDmmf(readFileSync(SCHEMA_FILE[p], 'utf8')).datamodel);
    expect(b.models).toEqual(a.models);
    expect(b.indexes).toEqual(a.indexes);
  });
});

describe.each(PROVIDERS)('migrations for %s', (provider) => {
  it('produce exactly the Prisma schema on a fresh database', async () => {
    const target = await freshDatabase(provider);
    const lines: string[] = [];
    const result = await applyMigrations(target, (msg) => lines.push(msg));
    const names = migrationNames(provider);
    expect(names.length).toBeGreaterThan(0);
    expect(result).toEqual({ applied: names, alreadyApplied: 0 });
    expect(lines).toHaveLength(names.length);

    const expected = expectedSchema(getDmmf(readFileSync(SCHEMA_FILE[provider], 'utf8')), provider);
    expect(expected.size).toBeGreaterThan(0);
    expect(drift(expected, await introspect(target), provider)).toEqual([]);
  });

  it('records history like prisma migrate deploy and applies nothing the second time', async () => {
    const target = await freshDatabase(provider);
    const names = migrationNames(provider);
    await applyMigrations(target);
    const lines: string[] = [];
    expect(await applyMigrations(target, (msg) => lines.push(msg))).toEqual({ applied: [], alreadyApplied: names.length });
    expect(lines).toEqual([]);

    const rows = await historyRows(target);
    expect(rows.map((r) => r.migration_name)).toEqual(names);
    for (const r of rows) {
      const file = readFileSync(join(migrationsDir(provider), r.migration_name, 'migration.sql'));
      expect(r.checksum).toBe(createHash('sha256').update(file).digest('hex'));
      expect(r.finished_at).not.toBeNull();
      expect(r.rolled_back_at).toBeNull();
      expect(Number(r.applied_steps_count)).toBe(1);
    }
    if (target.provider === 'sqlite') {
      const db = new Database(target.file, { readonly: true });
      try { expect(db.pragma('journal_mode', { simple: true })).toBe('wal'); } finally { db.close(); }
    }
  });

  it('refuses to start when an applied migration was modified', async () => {
    const target = await freshDatabase(provider);
    const dir = copyMigrations(provider);
    await applyMigrations(target, undefined, dir);
    const [first] = migrationNames(provider, dir);
    appendFileSync(join(dir, first, 'migration.sql'), '\n-- edited after the fact\n');
    await expect(applyMigrations(target, undefined, dir)).rejects.toThrow(new RegExp(`${first}.*modified`));
  });

  it('rolls a failing migration back completely and names it', async () => {
    const target = await freshDatabase(provider);
    const dir = copyMigrations(provider);
    const broken = '99991231000000_broken';
    mkdirSync(join(dir, broken));
    writeFileSync(join(dir, broken, 'migration.sql'), 'CREATE TABLE "half_done" ("id" TEXT);\nINSERT INTO "no_such_table" VALUES (1);\n');
    await expect(applyMigrations(target, undefined, dir)).rejects.toThrow(broken);

    // The good migrations before it stay applied; nothing of the broken one remains.
    expect((await historyRows(target)).map((r) => r.migration_name)).toEqual(migrationNames(provider));
    expect((await introspect(target)).has('half_done')).toBe(false);
  });
});

describe('concurrent start-up on PostgreSQL', () => {
  it('applies each migration once when two processes race', async () => {
    const target = await freshDatabase('postgresql');
    const names = migrationNames('postgresql');
    const results = await Promise.all([applyMigrations(target), applyMigrations(target)]);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(names);
    expect(results.map((r) => r.applied.length + r.alreadyApplied)).toEqual([names.length, names.length]);
    expect((await historyRows(target)).map((r) => r.migration_name)).toEqual(names);
  });
});
