// A scale-out set-up for fault tests: an API in this process on a fresh
// PostgreSQL database (direct Redis), and worker *processes* (the real CLI,
// `src/main.ts worker`) that a test can pause, kill or cut off, each with
// its own environment (e.g. Redis through a proxy the test owns).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { REPO_ROOT, watchChild, type Api } from '../helpers/jobs.js';
import { restClient, tokenClient, waitFor } from '../helpers/server.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_PASSWORD = 'AdminPass123!';

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its spawner helper's pid (a child named jobrunner-spawner or running spawnerProcess). */
  helperPid(): number | null;
  signal(sig: NodeJS.Signals): void;
}

export interface Cluster extends Api {
  db: TestDatabase;
  api: App;
  url: string;
  workspace: string;
  adminToken: string;
  /** Environment every process of the cluster shares. */
  env: Record<string, string>;
  /** A worker process; `host` runs it under that hostname (its own UTS namespace). */
  startWorker(extra?: Record<string, string>, host?: string): Promise<WorkerProcess>;
  /** SIGKILLs every worker started so far (their rows stay until reaped). */
  killWorkers(): Promise<void>;
  /** A query on the cluster's database, on a connection of its own (faults cut the services' pools, not the test's). */
  sql<T>(text: string, ...params: unknown[]): Promise<T[]>;
  /** A new operator with a concurrency cap, and a token. */
  user(cap: number): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
};

export async function startCluster(settings: Record<string, string> = {}): Promise<Cluster> {
  const db = await createTestDatabase('postgresql');
  const workspace = join(db.dataDir, 'workspace');
  mkdirSync(workspace, { recursive: true });
  chmodSync(workspace, 0o777);
  const env: Record<string, string> = {
    DATA_DIR: db.dataDir,
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_PREFIX: `chaos-${randomBytes(4).toString('hex')}`,
    JWT_SECRET: 'chaos-secret-that-is-long-enough-0123456',
    ADMIN_PASSWORD,
    HEARTBEAT_SECONDS: '1',
    KILL_GRACE_SECONDS: '1',
    WORKER_CONCURRENCY: '4',
    LOG_LEVEL: 'error',
    ...settings,
  };
  const api = await buildApp(loadConfig({ ...env, PORT: '0' }), { log: createLogger('error'), worker: false });
  const url = await api.start();
  const request = restClient(`${url}/api/v1`);
  const adminToken = await tokenClient(`${url}/api/v1`)('admin@example.com', ADMIN_PASSWORD);
  const workers: WorkerProcess[] = [];

  async function startWorker(extra: Record<string, string> = {}, host?: string): Promise<WorkerProcess> {
    const argv = [process.execPath, '--import', 'tsx', 'src/main.ts', 'worker'];
    // Another host, as far as the cluster can tell: a UTS namespace of its own with another hostname
    // (so no peer treats its jobs as local processes it could kill itself).
    const [file, ...args] = host ? ['unshare', '--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', host, ...argv] : argv;
    const child = spawn(file!, args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env, LOG_LEVEL: 'info', ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const { output, exited, gone } = watchChild(child);
    await waitFor(() => {
      if (gone()) throw new Error(`worker exited during start-up:\n${output()}`);
      return output().includes('worker started');
    }, 45_000, 50);
    const w: WorkerProcess = {
      child,
      pid: child.pid!,
      output,
      exited,
      helperPid: () => childrenOf(child.pid!).find((p) => /jobrunner-spawner|spawnerProcess/.test(cmdline(p))) ?? null,
      signal: (sig) => {
        if (!gone()) child.kill(sig);
      },
    };
    workers.push(w);
    return w;
  }

  return {
    db, api, url, workspace, adminToken, env, request, startWorker,
    async killWorkers() {
      for (const w of workers.splice(0)) {
        w.signal('SIGCONT');
        w.signal('SIGKILL');
        await w.exited;
      }
    },
    async sql<T>(text: string, ...params: unknown[]) {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        return (await client.query(text, params)).rows as T[];
      } finally {
        await client.end();
      }
    },
    async user(cap) {
      const email = `u-${randomBytes(4).toString('hex')}@example.com`;
      const created = await request('POST', '/users', { token: adminToken, body: { email, password: 'User-pass-123', role: 'operator', max_concurrent_jobs: cap } });
      if (created.status !== 201) throw new Error(`user: ${created.status} ${created.text}`);
      return { id: created.body.id, token: await tokenClient(`${url}/api/v1`)(email, 'User-pass-123') };
    },
    async close() {
      for (const w of workers) {
        w.signal('SIGCONT');
        w.signal('SIGKILL');
      }
      await Promise.all(workers.map((w) => w.exited));
      await api.stop(0);
      await db.drop();
    },
  };
}
