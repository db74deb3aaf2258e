// Starts the service under test (`node dist/main.js serve`) on a free
// 127.0.0.1 port with a fresh temporary DATA_DIR, waits until it answers,
// and stops it by PID (SIGTERM, so a --cpu-prof profile gets written).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { http } from './http.js';
import { run, start, type Child } from './proc.js';
import { sleep } from './stats.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH_DIR = join(ROOT, 'bench');
export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'BenchAdmin-' + randomBytes(6).toString('hex');
// BENCH_MAIN: measure another build of the service (e.g. a patched copy of
// dist/ in a directory beside a node_modules link); no build step then.
const MAIN = process.env.BENCH_MAIN ? resolve(process.env.BENCH_MAIN) : join(ROOT, 'dist', 'main.js');

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `jobrunner-bench-${prefix}-`));
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

let built = false;
/**
 * Builds dist/ when it is missing or older than src/ (BENCH_BUILD=always|never
 * overrides). A type error elsewhere in the tree does not stop tsc from
 * emitting, so a failed build only warns when dist/main.js exists.
 */
export async function ensureBuilt(): Promise<void> {
  if (built) return;
  built = true;
  const mode = process.env.BENCH_MAIN ? 'never' : process.env.BENCH_BUILD ?? 'auto';
  // The native spawner helper: rebuilt when native/spawner.c is newer (the script checks).
  if (mode !== 'never') await run('build-spawner', process.execPath, [join(ROOT, 'scripts', 'build-spawner.mjs')], { cwd: ROOT, timeoutMs: 120_000 });
  const stale = !existsSync(MAIN) || newestMtime(join(ROOT, 'src')) > statSync(MAIN).mtimeMs;
  if (mode === 'never' || (mode === 'auto' && !stale)) return;
  process.stdout.write(`building dist/ (${existsSync(MAIN) ? 'older than src/' : 'missing'}): npx tsc -p tsconfig.json ...\n`);
  const t = Date.now();
  try {
    await run('tsc', process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, timeoutMs: 300_000 });
  } catch (err) {
    if (!existsSync(MAIN)) throw err;
    process.stdout.write(`warning: tsc reported errors (dist/ was emitted anyway; src/ is being edited):\n${String((err as Error).message).slice(0, 1500)}\n`);
  }
  process.stdout.write(`built in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
}

export interface ServerOptions {
  /** `serve --no-worker`: jobs are accepted, never run. */
  noWorker?: boolean;
  env?: Record<string, string>;
  /** Write a V8 CPU profile into this directory (written on clean exit after SIGTERM). */
  cpuProfDir?: string;
  label?: string;
}

export interface BenchServer {
  url: string;
  api: string;
  pid: number;
  dataDir: string;
  child: Child;
  /** SIGTERM by PID, wait for exit (SIGKILL past the bound), remove DATA_DIR. */
  stop(): Promise<void>;
}

/** BENCH_PROFILE_DIR=<dir>: every server started runs with --cpu-prof into <dir>/<label>. */
export function profileDirFor(label: string): string | undefined {
  const base = process.env.BENCH_PROFILE_DIR;
  if (!base) return undefined;
  const dir = join(resolve(base), label);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function startServer(opts: ServerOptions = {}): Promise<BenchServer> {
  await ensureBuilt();
  const port = await freePort();
  const dataDir = tempDir(opts.label ?? 'server');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    TMPDIR: process.env.TMPDIR ?? tmpdir(),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    JWT_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'error',
    DEFAULT_MAX_CONCURRENT_JOBS: '10000',
    SHUTDOWN_GRACE_SECONDS: '5',
    KILL_GRACE_SECONDS: '1',
    ...opts.env,
  };
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  const args = [...nodeArgs, MAIN, 'serve', ...(opts.noWorker ? ['--no-worker'] : [])];
  const child = start(`server${opts.label ? ` ${opts.label}` : ''}`, process.execPath, args, { cwd: ROOT, env });
  const url = `http://127.0.0.1:${port}`;
  const api = `${url}/api/v1`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (!child.isRunning()) throw new Error(`server exited during start-up (${await child.exited}):\n${child.stderrTail()}`);
    try {
      const res = await http(`${api}/health`, { timeoutMs: 2000 });
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await child.stop('SIGKILL', 1000);
      throw new Error(`server did not answer ${api}/health within 60 s:\n${child.stderrTail()}`);
    }
    await sleep(100);
  }
  return {
    url,
    api,
    pid: child.pid,
    dataDir,
    child,
    async stop() {
      const code = await child.stop('SIGTERM', 30_000);
      if (code !== 0) process.stderr.write(`bench: server exited with ${code}\n${child.stderrTail()}\n`);
      if (!process.env.BENCH_KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function login(api: string, email = ADMIN_EMAIL, password = ADMIN_PASSWORD): Promise<string> {
  const res = await http(`${api}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: email, password }).toString(),
  });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${res.text.slice(0, 300)}`);
  return res.json<{ access_token: string }>().access_token;
}

/** Runs `body` against a fresh server and always stops it. */
export async function withServer<T>(opts: ServerOptions, body: (s: BenchServer) => Promise<T>): Promise<T> {
  const s = await startServer(opts);
  try {
    return await body(s);
  } finally {
    await s.stop();
  }
}
