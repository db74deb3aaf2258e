// What the scale-out figure needs beyond one server: a fresh PostgreSQL
// database per run on the machine's server, a Redis of its own, and
// `worker` processes beside a `serve --no-worker` API, all started and
// stopped by PID.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { start, type Child } from './proc.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, freePort, profileDirFor, ROOT } from './server.js';
import { sleep } from './stats.js';

/** An administrative connection to the machine's PostgreSQL (trust auth on 127.0.0.1). */
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** The build the workers run: BENCH_MAIN when set (as for the servers), else dist/main.js. */
export const WORKER_MAIN = process.env.BENCH_MAIN ? resolve(process.env.BENCH_MAIN) : join(ROOT, 'dist', 'main.js');

export interface PgDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database (the service migrates it at start-up); dropped after the run. */
export async function createPgDatabase(prefix = 'jr_bench'): Promise<PgDatabase> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Runs one query on `url` with a short-lived connection. */
export async function pgQuery<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

export interface BenchRedis {
  url: string;
  /** What it is, for the printout. */
  describe: string;
  /** Extra environment for the service (a channel prefix when the Redis is shared). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * A Redis for the figure: BENCH_REDIS_URL when set; else a private
 * `redis-server` on a free port (no persistence), so the machine's shared
 * Redis never carries this figure's events nor delivers other runs' to it;
 * else the shared one on 127.0.0.1:6379 with a REDIS_PREFIX of our own (a
 * build that does not know REDIS_PREFIX ignores it).
 */
export async function startRedis(): Promise<BenchRedis> {
  const prefix = `jrbench-${randomBytes(4).toString('hex')}`;
  if (process.env.BENCH_REDIS_URL) return { url: process.env.BENCH_REDIS_URL, describe: `${process.env.BENCH_REDIS_URL} (BENCH_REDIS_URL)`, env: { REDIS_PREFIX: prefix }, stop: async () => {} };
  const server = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
  if (!server) return { url: 'redis://127.0.0.1:6379', describe: `the shared redis://127.0.0.1:6379, REDIS_PREFIX=${prefix}`, env: { REDIS_PREFIX: prefix }, stop: async () => {} };
  const port = await freePort();
  const child = start('redis-server', server, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes']);
  const url = `redis://127.0.0.1:${port}`;
  const { Redis } = await import('ioredis');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') break;
    } catch {
      /* not up yet */
    } finally {
      probe.disconnect();
    }
    if (!child.isRunning() || Date.now() > deadline) {
      await child.stop('SIGKILL', 1000);
      throw new Error(`private redis-server on port ${port} did not answer:\n${child.stderrTail()}`);
    }
    await sleep(50);
  }
  return { url, describe: `a private redis-server on 127.0.0.1:${port} (pid ${child.pid})`, env: {}, stop: async () => void (await child.stop('SIGTERM', 5000)) };
}

export interface WorkerProcess {
  child: Child;
  pid: number;
  stop(): Promise<void>;
}

/** `node <main> worker` with the given environment (DATABASE_URL, REDIS_URL, DATA_DIR, WORKER_CONCURRENCY, ...). */
export function startWorkerProcess(env: Record<string, string>, label: string, main = WORKER_MAIN, profileLabel?: string): WorkerProcess {
  // BENCH_PROFILE_DIR: a CPU profile per worker process, as for the servers.
  const profDir = profileLabel ? profileDirFor(profileLabel) : undefined;
  const nodeArgs = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const child = start(`worker ${label}`, process.execPath, [...nodeArgs, main, 'worker'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      LANG: 'C.UTF-8',
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      LOG_LEVEL: 'error',
      SHUTDOWN_GRACE_SECONDS: '5',
      KILL_GRACE_SECONDS: '1',
      ...env,
    },
  });
  return {
    child,
    pid: child.pid,
    async stop() {
      const code = await child.stop('SIGTERM', 30_000);
      if (code !== 0) process.stderr.write(`bench: ${child.name} exited with ${code}\n${child.stderrTail()}\n`);
    },
  };
}

/** Waits until every one of `workers` has registered in the database (each process writes its row, with its pid, at start). */
export async function waitWorkersRegistered(url: string, workers: WorkerProcess[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const w of workers) {
      if (!w.child.isRunning()) throw new Error(`${w.child.name} exited during start-up (${await w.child.exited}):\n${w.child.stderrTail()}`);
    }
    const registered = new Set((await pgQuery<{ pid: number }>(url, 'SELECT pid FROM workers')).map((r) => r.pid));
    const missing = workers.filter((w) => !registered.has(w.pid));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${missing.length} of ${workers.length} workers not registered within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}
