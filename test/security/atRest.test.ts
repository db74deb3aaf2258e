// Secrets at rest: the SQLite database (with its -wal and -shm) and the
// generated JWT secret are readable by the server's user only, DATA_DIR is
// not listable by others, loose modes on an existing data dir are fixed at
// start (one warning per file), and a stored jwt-secret too short to be a
// secret stops the real server with one line saying how to fix it.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { freePort, REPO_ROOT } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from '../helpers/server.js';

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A parent directory of our own; the data dir inside it does not exist yet. */
function freshDataDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'jobrunner-atrest-'));
  roots.push(root);
  return join(root, 'data');
}

/** Server env on the default SQLite file in `dataDir`, with the JWT secret generated there (JWT_SECRET unset). */
function sqliteEnv(dataDir: string): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    LOG_LEVEL: 'error',
    KILL_GRACE_SECONDS: '1',
  };
}

/** A logger that keeps the warnings (and drops the rest). */
function capturingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const log: Logger & { warnings: string[] } = {
    warnings,
    debug() {},
    info() {},
    warn(msg) { warnings.push(msg); },
    error() {},
    scope: () => log,
  };
  return log;
}

async function startApp(env: Record<string, string>, log = capturingLogger()): Promise<{ app: App; log: ReturnType<typeof capturingLogger> }> {
  const app = await buildApp(loadConfig(env), { log });
  await app.start();
  return { app, log };
}

describe('files at rest', () => {
  it('a fresh data dir is 0700; its database, -wal, -shm and jwt-secret are 0600', async () => {
    const dataDir = freshDataDir();
    const { app, log } = await startApp(sqliteEnv(dataDir));
    try {
      const db = join(dataDir, 'jobrunner.db');
      expect(app.config.database).toEqual({ provider: 'sqlite', file: db });
      // WAL mode: while the server has the database open, both side files exist.
      expect(existsSync(`${db}-wal`)).toBe(true);
      expect(existsSync(`${db}-shm`)).toBe(true);
      expect({
        dir: mode(dataDir),
        db: mode(db),
        wal: mode(`${db}-wal`),
        shm: mode(`${db}-shm`),
        secret: mode(join(dataDir, 'jwt-secret')),
      }).toEqual({ dir: '0700', db: '0600', wal: '0600', shm: '0600', secret: '0600' });
      // Nothing needed fixing, so nothing was said about modes.
      expect(log.warnings.filter((w) => /mode|permission/i.test(w))).toEqual([]);
    } finally {
      await app.stop(0);
    }
  });

  it('an existing data dir with loose modes is fixed at start, one warning per file', async () => {
    const dataDir = freshDataDir();
    const env = sqliteEnv(dataDir);
    const db = join(dataDir, 'jobrunner.db');
    const secret = join(dataDir, 'jwt-secret');
    // A data dir made by an older version (or by hand): world-readable everything.
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o777);
    const first = await startApp(env);
    await first.app.stop(0);
    chmodSync(db, 0o644);
    chmodSync(secret, 0o644);
    chmodSync(dataDir, 0o777);

    const { app, log } = await startApp(env);
    try {
      expect({ db: mode(db), wal: mode(`${db}-wal`), shm: mode(`${db}-shm`), secret: mode(secret) })
        .toEqual({ db: '0600', wal: '0600', shm: '0600', secret: '0600' });
      // Group and others lose read and write; search (x) stays so jobs can still reach paths below it.
      expect(statSync(dataDir).mode & 0o066).toBe(0);
      expect(statSync(dataDir).mode & 0o700).toBe(0o700);
      // A warning names its file as a word of its own (the db path is a prefix of its -wal's).
      const about = (path: string) => log.warnings.filter((w) => w.split(/[\s"'`:,;()]+/).includes(path));
      expect(about(db)).toHaveLength(1);
      expect(about(secret)).toHaveLength(1);
      expect(about(dataDir)).toHaveLength(1);
    } finally {
      await app.stop(0);
    }
  });
});

/** Runs `node --import tsx src/main.ts serve` and resolves when it exits, or when it answers health (then it is killed). */
async function serveOnce(env: Record<string, string>, timeoutMs = 45_000): Promise<{ code: number | null; stderr: string; healthy: boolean }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let done = false;
  const health = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (!done && Date.now() < deadline) {
      try {
        if ((await fetch(`http://127.0.0.1:${env.PORT}/api/v1/health`)).status === 200) return true;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  })();
  const first = await Promise.race([exited.then((code) => ({ exited: true as const, code })), health.then((ok) => ({ exited: false as const, ok }))]);
  done = true;
  if (first.exited) return { code: first.code, stderr, healthy: false };
  child.kill('SIGKILL');
  const code = await exited;
  return { code, stderr, healthy: first.ok };
}

describe.each([
  ['a 1-character', 'x'],
  ['an empty', ''],
  ['a whitespace-only', ' \n'],
])('%s stored jwt-secret', (_what, content) => {
  it('stops the server at start with one line naming the file and the fix', async () => {
    const dataDir = freshDataDir();
    mkdirSync(dataDir, { mode: 0o700 });
    const file = join(dataDir, 'jwt-secret');
    writeFileSync(file, content, { mode: 0o600 });
    const result = await serveOnce({ ...sqliteEnv(dataDir), PORT: String(await freePort()) });
    expect(result.healthy, 'the server started with a weak secret').toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    const lines = result.stderr.split('\n').filter(Boolean);
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toContain(file);
    expect(lines[0]).toMatch(/32/);
    expect(lines[0]).toMatch(/delete|remove/i);
    // Refused, not replaced: the file is left for the administrator.
    expect(existsSync(file)).toBe(true);
  });
});
