// Prisma's better-sqlite3 adapter prepares every statement anew; preparing
// cost more than executing in the submit profile. This keeps the adapter (its
// type mapping and error translation) and gives its connection a bounded
// cache of prepared statements. The adapter binds parameters with
// `prepare(sql).bind(args)`, and a better-sqlite3 statement can be bound only
// once, so the cache hands out a light wrapper that passes the arguments to
// each call instead.
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';

// Prisma writes a new text for each IN-list length or createMany row count;
// the bound keeps those from growing the cache without limit.
const MAX_STATEMENTS = 200;

type Statement = BetterSqlite3.Statement<unknown[], unknown>;
type Args = unknown[];

/** Just what the adapter uses of a statement: bind once, then run or read. */
class Reusable {
  private args: Args = [];
  constructor(private readonly stmt: Statement) {}
  get reader() {
    return this.stmt.reader;
  }
  columns() {
    return this.stmt.columns();
  }
  bind(args: Args) {
    this.args = args;
    return this;
  }
  run() {
    return this.stmt.run(this.args);
  }
  raw() {
    const { stmt, args } = this;
    stmt.raw(true);
    return { all: () => stmt.all(args) };
  }
}

function cacheStatements(db: BetterSqlite3.Database) {
  const prepare = db.prepare.bind(db) as (sql: string) => Statement;
  const cache = new Map<string, Statement>();
  (db as { prepare: unknown }).prepare = (sql: string) => {
    let stmt = cache.get(sql);
    if (stmt) cache.delete(sql); // re-inserted below: Map order is recency order
    else {
      stmt = prepare(sql);
      if (cache.size >= MAX_STATEMENTS) cache.delete(cache.keys().next().value!);
    }
    cache.set(sql, stmt);
    return new Reusable(stmt);
  };
}

export function cachingSqliteAdapter(file: string, timeoutMs: number): PrismaBetterSqlite3 {
  const factory = new PrismaBetterSqlite3({ url: `file:${file}`, timeout: timeoutMs });
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const db = (adapter as unknown as { client?: BetterSqlite3.Database }).client;
    // A newer adapter that renamed its connection must fail loudly here, not run uncached.
    if (!db || typeof db.prepare !== 'function') throw new Error('@prisma/adapter-better-sqlite3 changed: no `client` connection to cache statements on');
    cacheStatements(db);
    return adapter;
  };
  return factory;
}
