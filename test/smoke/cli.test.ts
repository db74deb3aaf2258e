// The CLI as a user meets it: real child processes from the repo root.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { freePort, REPO_ROOT, runJob, spawnServer, watchChild, type SpawnedServer } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from '../helpers/server.js';
import { VERSION } from '../../src/version.js';

function cli(...args: string[]) {
  return cliWith({}, ...args);
}

function cliWith(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('jobrunner command line', () => {
  it.each([['--help'], ['-h'], ['help']])('%s prints the usage with every command and the main environment variables, exit 0', (arg) => {
    const r = cli(arg);
    expect(r.code).toBe(0);
    for (const word of ['serve', '--no-worker', 'worker', 'migrate', 'create-user', '--version', 'DATA_DIR', 'DATABASE_URL', 'REDIS_URL', 'PORT']) {
      expect(r.stdout).toContain(word);
    }
    expect(r.stderr).toBe('');
  });

  it.each([['--version'], ['-v']])('%s prints the version, exit 0', (arg) => {
    const r = cli(arg);
    expect(r).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });

  it.each([
    ['bogus', 'unknown command "bogus"', 'jobrunner --help'],
    ['--bogus', 'unknown option "--bogus"', 'jobrunner --help'],
    ['serve --bogus', 'unknown option "--bogus" for `serve`', 'jobrunner serve --help'],
    ['batch frobnicate', 'unknown subcommand "frobnicate" for `batch`', 'jobrunner batch --help'],
  ])('`%s` prints the usage hint to stderr, exit 2', (args, message, hint) => {
    const r = cli(...args.split(' '));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(hint);
  });

  it('with no command prints the usage to stderr and exits 2 without starting a server', () => {
    // A serve would stop at this configuration error; nothing is configured, nothing fails.
    const r = cliWith({ DATABASE_URL: 'mysql://nope' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('usage: jobrunner <command>');
    expect(r.stderr).toContain('no command given (`npm start` runs `jobrunner serve`)');
    expect(r.stderr).not.toContain('DATABASE_URL must start with');
  });
});

describe('one server per SQLite data directory', () => {
  const servers: SpawnedServer[] = [];
  afterAll(async () => {
    for (const s of servers) {
      if (s.child.exitCode === null && s.child.signalCode === null) {
        s.child.kill('SIGKILL');
        await s.exited;
      }
    }
  });

  async function envFor(dataDir: string, url: string) {
    return {
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DATABASE_URL: url,
      JWT_SECRET: 'cli-test-secret-0123456789-abcdefghijklmn',
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      LOG_LEVEL: 'error',
      SHUTDOWN_GRACE_SECONDS: '1',
    };
  }

  it('refuses a second server naming the directory and the holder pid; the first keeps serving; after a SIGTERM a new one starts', async () => {
    const db = await createTestDatabase('sqlite');
    mkdirSync(join(db.dataDir, 'workspace'), { recursive: true });
    const first = await spawnServer(await envFor(db.dataDir, db.url));
    servers.push(first);
    const lockFile = join(db.dataDir, '.lock');
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(first.child.pid));

    const env2 = await envFor(db.dataDir, db.url);
    const second = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env2 },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const watched = watchChild(second);
    const { code } = await watched.exited;
    expect(code).not.toBe(0);
    expect(watched.output()).toContain(`data directory ${db.dataDir} is in use by another jobrunner server (pid ${first.child.pid}`);
    // Refused before listening: nothing answers on its port.
    await expect(fetch(`http://127.0.0.1:${env2.PORT}/api/v1/health`)).rejects.toThrow();

    expect((await fetch(`${first.api}/health`)).status).toBe(200);
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(first.child.pid));

    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect(existsSync(lockFile)).toBe(false);

    const third = await spawnServer(await envFor(db.dataDir, db.url));
    servers.push(third);
    expect((await fetch(`${third.api}/health`)).status).toBe(200);
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(third.child.pid));

    // A SIGKILLed server leaves its lock behind; the next one takes it over.
    third.child.kill('SIGKILL');
    await third.exited;
    expect(existsSync(lockFile)).toBe(true);
    const fourth = await spawnServer({ ...(await envFor(db.dataDir, db.url)), LOG_LEVEL: 'info' });
    servers.push(fourth);
    expect(fourth.output()).toContain('took over a stale data directory lock');

    // A job's start and finish are logged at info.
    const token = await fourth.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    const { job } = await runJob(fourth, token, { command: ['sh', '-c', 'exit 3'] });
    const lines = fourth.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const started = lines.find((l) => l.msg === 'job started' && l.jobId === job.id);
    const finished = lines.find((l) => l.msg === 'job finished' && l.jobId === job.id);
    expect(started).toMatchObject({ level: 'info', ownerId: expect.any(String), attempt: expect.any(Number), pid: expect.any(Number) });
    expect(finished).toMatchObject({ level: 'info', ownerId: started!.ownerId, attempt: started!.attempt, status: 'failed', exitCode: 3, durationMs: expect.any(Number) });
    fourth.child.kill('SIGTERM');
    expect((await fourth.exited).code).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
  }, 180_000);
});
