// Scale-out: one API process without a worker and two worker processes on a
// shared PostgreSQL database, talking over Redis. (They run in this test
// process as three separate apps with their own database pools and Redis
// connections; the OS-process roles are exercised in the restart tests.)
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { groupMembers, jobGroup } from '../helpers/jobs.js';
import { waitFor } from '../helpers/server.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('API and two workers on PostgreSQL + Redis', () => {
  let db: TestDatabase;
  let api: App;
  const workers: App[] = [];
  let url: string;
  let token: string;
  let workspace: string;

  const env = () => ({
    PORT: '0',
    DATA_DIR: db.dataDir,
    DATABASE_URL: db.url,
    REDIS_URL,
    JWT_SECRET: 'scaleout-secret-that-is-long-enough-0123',
    ADMIN_PASSWORD: 'AdminPass123!',
    // Below the user limit of 3 set in the test that counts workers: one worker alone cannot fill the user's slots,
    // so the other must take part, whichever of them wins each claim race.
    WORKER_CONCURRENCY: '2',
    KILL_GRACE_SECONDS: '1',
    LOG_LEVEL: 'error',
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    workspace = join(db.dataDir, 'workspace');
    mkdirSync(workspace, { recursive: true });
    // Jobs run as a uid of their own: an administrator makes shared workspaces writable through a jobs group (JOB_GROUP).
    chmodSync(workspace, 0o777);
    const log = createLogger('error');
    api = await buildApp(loadConfig(env()), { log, worker: false });
    url = await api.start();
    for (let i = 0; i < 2; i++) {
      const w = await buildApp(loadConfig(env()), { log, http: false });
      await w.start();
      workers.push(w);
    }
    const res = await fetch(`${url}/api/v1/auth/token`, { method: 'POST', body: new URLSearchParams({ username: 'admin@example.com', password: 'AdminPass123!' }) });
    token = ((await res.json()) as { access_token: string }).access_token;
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop(0)));
    await api?.stop(0);
    await db?.drop();
  });

  it('a user deactivated or demoted through one API process is refused at once by another', async () => {
    // Each API process caches callers' user rows; the change must reach the other one over Redis.
    const other = await buildApp(loadConfig(env()), { log: createLogger('error'), worker: false });
    const otherUrl = await other.start();
    try {
      const email = `moved-${Date.now()}@example.com`;
      const created = await call('POST', '/users', { email, password: 'Moved-pass-1', role: 'operator' });
      expect(created.status).toBe(201);
      const login = await fetch(`${otherUrl}/api/v1/auth/token`, { method: 'POST', body: new URLSearchParams({ username: email, password: 'Moved-pass-1' }) });
      let userToken = ((await login.json()) as { access_token: string }).access_token;
      const submitThere = () =>
        fetch(`${otherUrl}/api/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${userToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', command: ['true'] }) }).then((r) => r.status);
      const statsThere = () => fetch(`${otherUrl}/api/v1/jobs/stats`, { headers: { authorization: `Bearer ${userToken}` } }).then((r) => r.status);

      expect(await submitThere()).toBe(202); // the other process now holds the row
      expect((await call('PATCH', `/users/${created.body.id}`, { role: 'viewer' })).status).toBe(200);
      // Well inside the caches' own 5 s lifetime: only the announcement can make this pass. A role change ends the sessions.
      await waitFor(async () => (await submitThere()) === 401, 2_000, 20);
      const again = await fetch(`${otherUrl}/api/v1/auth/token`, { method: 'POST', body: new URLSearchParams({ username: email, password: 'Moved-pass-1' }) });
      userToken = ((await again.json()) as { access_token: string }).access_token;
      expect(await submitThere()).toBe(403); // a viewer now

      expect(await statsThere()).toBe(200);
      expect((await call('PATCH', `/users/${created.body.id}`, { is_active: false })).status).toBe(200);
      await waitFor(async () => (await statsThere()) === 401, 2_000, 20);
    } finally {
      await other.stop(0);
    }
  });

  it('reports Redis in health', async () => {
    const res = await call('GET', '/health');
    expect(res.body).toMatchObject({ status: 'ok', database: true, redis: true });
  });

  it('runs every job exactly once across workers, within the user limit', async () => {
    await call('POST', '/admin/limits/global', { max_concurrent_jobs: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const res = await call('POST', '/jobs', {
        name: `mark-${i}`,
        // Each process notes when it starts and ends (the host's clock): what ran at once, as the user's jobs saw it.
        command: ['sh', '-c', 'echo "S $(date +%s%N)" >> spans; echo "$MARK" >> marks; sleep 0.2; echo "E $(date +%s%N)" >> spans'],
        working_dir: workspace,
        env: { MARK: String(i) },
      });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    await waitFor(async () => {
      const list = await call('GET', '/jobs?limit=100');
      return list.body.every((j: { status: string }) => j.status === 'success');
    }, 60_000);
    const marks = readFileSync(join(workspace, 'marks'), 'utf8').trim().split('\n').sort((a, b) => Number(a) - Number(b));
    expect(marks).toEqual(Array.from({ length: 24 }, (_, i) => String(i)));

    // Both workers took part, and never more than 3 of the user's processes ran at once. (Not read from
    // started_at/finished_at: each is taken on its worker's clock before its statement commits, so a job
    // claimed the moment another finished can carry a start a few ms before that finish.)
    const owners = await api.db.prisma.job.findMany({ where: { id: { in: ids } }, select: { workerId: true } });
    expect(new Set(owners.map((o) => o.workerId)).size).toBe(2);
    const events = readFileSync(join(workspace, 'spans'), 'utf8').trim().split('\n').map((line) => {
      const [kind, ns] = line.split(' ');
      return { t: BigInt(ns!), d: kind === 'S' ? 1 : -1 };
    });
    expect(events.filter((e) => e.d === 1)).toHaveLength(24);
    events.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.d - b.d));
    let running = 0;
    let peak = 0;
    for (const e of events) peak = Math.max(peak, (running += e.d));
    expect(peak).toBeLessThanOrEqual(3);
  });

  it('cancels, through the API process, a job running on a worker process', async () => {
    const res = await call('POST', '/jobs', { name: 'long', command: ['sh', '-c', 'exec sleep 300'], working_dir: workspace });
    await waitFor(async () => (await call('GET', `/jobs/${res.body.id}`)).body.status === 'running');
    // The job's process group on the host (its init's pid), from its cgroup: inside its PID namespace `$$` is not a host pid.
    const pid = await jobGroup(res.body.id);
    await expect.poll(() => groupMembers(pid).map((p) => p.cmdline), { timeout: 5000 }).toContain('sleep 300');
    const canceled = await call('POST', `/jobs/${res.body.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceled');
    expect(() => process.kill(-pid, 0)).toThrow();
  });
});
