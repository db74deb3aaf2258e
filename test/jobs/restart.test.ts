// The real CLI server (`node --import tsx src/main.ts serve`) as a child
// process: what happens to jobs when it is killed (SIGKILL) and restarted on
// the same data, and when it is stopped (SIGTERM) while a job runs. Also the
// one place where the server's secrets really are in its process environment.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, PROVIDERS, type Provider, type TestDatabase } from '../helpers/db.js';
import {
  freePort, getJob, getLogs, groupGone, groupMembers, HOLD_GROUP, jobGroup, killGroup,
  runJob, spawnServer, submit, waitRunning, waitStatus, waitTerminal, type SpawnedServer,
} from '../helpers/jobs.js';
import { cgroupProcs } from '../helpers/cgroups.js';
import { waitFor } from '../helpers/server.js';

const ADMIN_EMAIL = 'root@example.com';
const ADMIN_PASSWORD = 'Restart-Admin-Pass-42';
const JWT_SECRET = 'restart-test-secret-0123456789-abcdefghij';

/** What the database recorded, read directly (the server is gone at that point). */
async function jobRow(provider: Provider, url: string, id: string): Promise<{ status: string; error: string | null }> {
  if (provider === 'sqlite') {
    const db = new Database(url.slice('file:'.length), { readonly: true });
    try {
      return db.prepare('SELECT status, error FROM jobs WHERE id = ?').get(id) as { status: string; error: string | null };
    } finally {
      db.close();
    }
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query('SELECT status, error FROM jobs WHERE id = $1', [id])).rows[0];
  } finally {
    await c.end();
  }
}

describe.each(PROVIDERS)('server restarts on %s', (provider) => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let srv: SpawnedServer | null = null;
  let token: string;
  const groups: number[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(provider);
    mkdirSync(join(db.dataDir, 'workspace'), { recursive: true });
    env = {
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATA_DIR: db.dataDir,
      DATABASE_URL: db.url,
      JWT_SECRET,
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      LOG_LEVEL: 'error',
      KILL_GRACE_SECONDS: '1',
      SHUTDOWN_GRACE_SECONDS: '1',
    };
    srv = await spawnServer(env);
    token = await srv.token(ADMIN_EMAIL, ADMIN_PASSWORD);
  }, 90_000);

  afterAll(async () => {
    if (srv && srv.child.exitCode === null && srv.child.signalCode === null) {
      srv.child.kill('SIGKILL');
      await srv.exited;
    }
    for (const g of groups) killGroup(g);
    await db?.drop();
  });

  it("a job's environment holds none of the server's secrets", async () => {
    const { job, logs } = await runJob(srv!, token, { command: ['env'] });
    expect(job.status).toBe('success');
    const names = logs.stdout.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('=')));
    expect(names.sort()).toEqual(['HOME', 'LANG', 'PATH']);
    for (const secret of [JWT_SECRET, ADMIN_PASSWORD, db.url, 'JWT_SECRET', 'DATABASE_URL', 'ADMIN_PASSWORD']) {
      expect(logs.stdout).not.toContain(secret);
    }
  });

  it('after SIGKILL the running job dies with the server; after a restart on the same data it is failed "worker lost", and pending jobs run', async () => {
    // One job at a time for this user, so the next two wait.
    const users = await srv!.request('GET', '/users', { token });
    const admin = users.body.find((u: { email: string }) => u.email === ADMIN_EMAIL);
    expect((await srv!.request('PATCH', `/users/${admin.id}`, { token, body: { max_concurrent_jobs: 1 } })).status).toBe(200);

    const long = await submit(srv!, token, { name: 'long', command: ['sh', '-c', HOLD_GROUP] });
    await waitRunning(srv!, token, long.id);
    const pgid = await jobGroup(long.id);
    groups.push(pgid);
    await expect.poll(() => groupMembers(pgid).map((p) => p.cmdline), { timeout: 5000 }).toContain('sleep 300');
    const waiting = [
      await submit(srv!, token, { name: 'after-1', command: ['true'] }),
      await submit(srv!, token, { name: 'after-2', command: ['sh', '-c', 'echo second'] }),
    ];
    for (const j of waiting) expect((await getJob(srv!, token, j.id)).status).toBe('pending');

    srv!.child.kill('SIGKILL');
    expect((await srv!.exited).signal).toBe('SIGKILL');
    // Isolated jobs die with their server (issue #11): the spawner helper kills
    // them when the server is gone, and each job's init dies with the helper.
    // (Before isolation the job outlived the server in its own session.)
    expect(await groupGone(pgid, 10_000)).toBe(true);
    await waitFor(() => cgroupProcs(long.id).length === 0, 10_000, 50);

    srv = await spawnServer(env);
    token = await srv.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    const lost = await waitStatus(srv, token, long.id, ['failed', 'success', 'canceled'], 20_000);
    expect(lost).toMatchObject({ status: 'failed', error: 'worker lost' });
    expect(lost.finished_at).not.toBeNull();

    const done = await Promise.all(waiting.map((j) => waitTerminal(srv!, token, j.id, 20_000)));
    expect(done.map((j) => j.status)).toEqual(['success', 'success']);
    expect((await getLogs(srv, token, waiting[1]!.id)).stdout).toBe('second\n');
  }, 120_000);

  it('SIGTERM with SHUTDOWN_GRACE_SECONDS=1 stops the server promptly and records the running job as failed, its group gone', async () => {
    const job = await submit(srv!, token, { name: 'graceful', command: ['sh', '-c', HOLD_GROUP] });
    await waitRunning(srv!, token, job.id);
    const pgid = await jobGroup(job.id);
    groups.push(pgid);

    srv!.child.kill('SIGTERM');
    const exit = await Promise.race([srv!.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(exit, srv!.output()).toEqual({ code: 0, signal: null });

    const row = await jobRow(provider, db.url, job.id);
    expect(row.status).toBe('failed');
    expect(row.error).toMatch(/shutdown/);
    expect(await groupGone(pgid, 5000)).toBe(true);
  }, 60_000);
});
