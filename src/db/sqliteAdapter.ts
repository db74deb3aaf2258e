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

/** Returns the connection's own (uncached) prepare. */
function cacheStatements(db: BetterSqlite3.Database): (sql: string) => Statement {
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
  return prepare;
}

/**
 * Synchronous statements on the same connection, for the engine's hot path
 * (claim, pid, outcome, log chunks) where Prisma's per-call cost was most of
 * the dispatcher's time. A body runs in one transaction, only while no Prisma
 * transaction is open on the connection: JavaScript runs it to the end before
 * anything else, so it can neither see nor join someone else's transaction.
 */
export interface DirectSqlite {
  transaction<T>(body: (sql: (text: string) => Statement) => T): Promise<T>;
}

export function cachingSqliteAdapter(file: string, timeoutMs: number): { adapter: PrismaBetterSqlite3; direct: DirectSqlite } {
  const factory = new PrismaBetterSqlite3({ url: `file:${file}`, timeout: timeoutMs });
  const connect = factory.connect.bind(factory);
  let db: BetterSqlite3.Database | null = null;
  let prepare: ((sql: string) => Statement) | null = null;
  // Apart from the adapter's cache: these statements keep their own modes.
  const own = new Map<string, Statement>();
  const sql = (text: string) => {
    let stmt = own.get(text);
    if (!stmt) {
      // Plain numbers: the adapter's connection defaults to BigInt integers.
      stmt = prepare!(text).safeIntegers(false);
      own.set(text, stmt);
    }
    return stmt;
  };
  factory.connect = async () => {
    const adapter = await connect();
    const client = (adapter as unknown as { client?: BetterSqlite3.Database }).client;
    // A newer adapter that renamed its connection must fail loudly here, not run uncached.
    if (!client || typeof client.prepare !== 'function') throw new Error('@prisma/adapter-better-sqlite3 changed: no `client` connection to cache statements on');
    prepare = cacheStatements(client);
    db = client;
    // Statements belong to their connection: a reconnect starts over.
    own.clear();
    return adapter;
  };
  const direct: DirectSqlite = {
    async transaction(body) {
      if (!db) throw new Error('the SQLite connection is not open yet');
      while (db.inTransaction) await new Promise((r) => setImmediate(r));
      return db.transaction(() => body(sql))();
    },
  };
  return { adapter: factory, direct };
}
