// One server per SQLite data directory, as an operator meets it: real server
// processes on one DATA_DIR. The lock is the kernel's (a POSIX record lock), so
// a server killed with SIGKILL never blocks its restart, whoever reuses its pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { freePort, REPO_ROOT, spawnServer, submit, watchChild, type SpawnedServer } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, waitFor } from '../helpers/server.js';

const others: ChildProcess[] = [];
const servers: SpawnedServer[] = [];
afterAll(async () => {
  for (const c of others) c.kill('SIGKILL');
  for (const s of servers) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGKILL');
      await s.exited;
    }
  }
});

async function envFor(dataDir: string, url: string) {
  return {
    PORT: String(await freePort()), HOST: '127.0.0.1', DATA_DIR: dataDir, DATABASE_URL: url,
    JWT_SECRET: 'lock-test-secret-0123456789-abcdefghijklmn', ADMIN_EMAIL, ADMIN_PASSWORD,
    LOG_LEVEL: 'warn', LOG_FORMAT: 'json', SHUTDOWN_GRACE_SECONDS: '1',
  };
}

async function serve(dataDir: string, url: string) {
  const s = await spawnServer(await envFor(dataDir, url));
  servers.push(s);
  return s;
}

describe('one server per SQLite data directory', () => {
  it('a second server is refused before listening, naming the directory and the holder; after a SIGTERM the next one starts', async () => {
    const db = await createTestDatabase('sqlite');
    mkdirSync(join(db.dataDir, 'workspace'), { recursive: true });
    const first = await serve(db.dataDir, db.url);

    const env2 = await envFor(db.dataDir, db.url);
    const second = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
      cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env2 }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const watched = watchChild(second);
    expect((await watched.exited).code).toBe(1);
    expect(watched.output()).toContain(`data directory ${db.dataDir} is in use by another jobrunner server (pid ${first.child.pid})`);
    await expect(fetch(`http://127.0.0.1:${env2.PORT}/api/v1/health`)).rejects.toThrow();
    expect((await fetch(`${first.api}/health`)).status).toBe(200);

    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect(existsSync(join(db.dataDir, 'server.pid'))).toBe(false);
    const third = await serve(db.dataDir, db.url);
    expect((await fetch(`${third.api}/health`)).status).toBe(200);
  }, 120_000);

  it('after a SIGKILL with a job still running, and its pid now another process\'s, a restart starts at once and says the last one was killed', async () => {
    const db = await createTestDatabase('sqlite');
    mkdirSync(join(db.dataDir, 'workspace'), { recursive: true });
    const killed = await serve(db.dataDir, db.url);
    const token = await killed.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    const job = await submit(killed, token, { command: ['sleep', '30'] });
    await waitFor(async () => (await killed.request('GET', `/jobs/${job.id}`, { token })).body.status === 'running', 30_000);
    killed.child.kill('SIGKILL');
    await killed.exited;

    // The pid the dead server recorded now belongs to a live process of someone else's.
    const reuser = spawn('sleep', ['60']);
    others.push(reuser);
    for (const name of ['server.pid', '.lock']) {
      const file = join(db.dataDir, name);
      if (existsSync(file)) writeFileSync(file, `${reuser.pid}\n`);
    }

    const restarted = await serve(db.dataDir, db.url);
    expect((await fetch(`${restarted.api}/health`)).status).toBe(200);
    expect(restarted.output()).toContain(String(reuser.pid));
    expect(readFileSync(join(db.dataDir, 'server.pid'), 'utf8').trim()).toBe(String(restarted.child.pid));
  }, 120_000);
});
