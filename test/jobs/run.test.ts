// Submitting and running jobs: the JobRead shape, outcomes, logs, the
// child's environment and working directory.
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { getJob, getLogs, ISO_Z, JOB_READ_KEYS, runJob, submit, waitStatus, waitTerminal } from '../helpers/jobs.js';
import { ADMIN_PASSWORD, startServer, type TestServer } from '../helpers/server.js';

describe.each(PROVIDERS)('running jobs on %s', (provider) => {
  let s: TestServer;
  let op: Awaited<ReturnType<TestServer['user']>>;
  const savedEnv: Record<string, string | undefined> = {};

  beforeAll(async () => {
    s = await startServer(provider);
    // The server runs in this process: put its secrets into the process
    // environment too, as `jobrunner serve` would have them, so a child that
    // inherited the server's environment would show them.
    for (const k of ['JWT_SECRET', 'DATABASE_URL', 'ADMIN_PASSWORD'] as const) {
      savedEnv[k] = process.env[k];
      process.env[k] = s.env[k];
    }
    op = await s.user('operator');
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await s?.stop();
  });

  it('accepts the seed example with 202 and a complete JobRead, then runs make (exit 2: no Makefile)', async () => {
    const dir = join(s.db.dataDir, 'workspace', 'nightly');
    mkdirSync(dir, { recursive: true });
    const body = {
      name: 'nightly-linux',
      command: ['make', 'test'],
      working_dir: dir,
      env: { BUILD_MODE: 'release' },
      payload: { note: 'Nightly smoke' },
    };
    const res = await s.request('POST', '/jobs', { token: op.token, body });
    expect(res.status).toBe(202);
    const job = res.body;
    expect(Object.keys(job)).toEqual(expect.arrayContaining([...JOB_READ_KEYS]));
    expect(job).toMatchObject({
      name: 'nightly-linux',
      command: ['make', 'test'],
      working_dir: realpathSync(dir),
      env: { BUILD_MODE: 'release' },
      payload: { note: 'Nightly smoke' },
      owner_id: op.id,
      batch_id: null,
      timeout_seconds: null,
    });
    expect(job.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(['pending', 'running', 'success', 'failed']).toContain(job.status);
    expect(job.created_at).toMatch(ISO_Z);

    const done = await waitTerminal(s, op.token, job.id);
    // GNU make without a Makefile: "No rule to make target 'test'", exit status 2.
    expect(done).toMatchObject({ status: 'failed', exit_code: 2 });
    expect(done.started_at).toMatch(ISO_Z);
    expect(done.finished_at).toMatch(ISO_Z);
    expect(Date.parse(done.started_at!)).toBeGreaterThanOrEqual(Date.parse(done.created_at));
    expect(Date.parse(done.finished_at!)).toBeGreaterThanOrEqual(Date.parse(done.started_at!));
    const logs = await getLogs(s, op.token, job.id);
    expect(logs).toMatchObject({ job_id: job.id, status: 'failed', exit_code: 2, stdout: '' });
    expect(logs.stderr).toContain('No rule to make target');
  });

  it('returns the payload verbatim, nested keys in their order', async () => {
    const payload = { zeta: 1, alpha: { y: [3, 1, { b: null, a: 'ü ✓' }], x: true }, mid: 'x', nested: { '2': 'two', '1': 'one', deep: { z: 0.5, a: -1 } } };
    const job = await submit(s, op.token, { command: ['true'], payload });
    expect(JSON.stringify(job.payload)).toBe(JSON.stringify(payload));
    const again = await getJob(s, op.token, job.id);
    expect(JSON.stringify(again.payload)).toBe(JSON.stringify(payload));
    await waitTerminal(s, op.token, job.id);
  });

  it('true succeeds with exit 0, false fails with exit 1', async () => {
    const ok = await runJob(s, op.token, { command: ['true'] });
    expect(ok.job).toMatchObject({ status: 'success', exit_code: 0, error: null });
    expect(ok.logs).toMatchObject({ status: 'success', exit_code: 0, stdout: '', stderr: '', stdout_truncated: false, stderr_truncated: false });
    const bad = await runJob(s, op.token, { command: ['false'] });
    expect(bad.job).toMatchObject({ status: 'failed', exit_code: 1 });
  });

  it('a program that does not exist fails with "spawn ENOENT" and no exit code', async () => {
    const { job } = await runJob(s, op.token, { command: ['/no/such/binary'] });
    expect(job.status).toBe('failed');
    expect(job.exit_code).toBeNull();
    expect(job.error).toContain('spawn ENOENT');
  });

  it('keeps stdout and stderr apart', async () => {
    const { job, logs } = await runJob(s, op.token, { command: ['sh', '-c', 'echo out1; echo err1 >&2; echo out2; echo err2 >&2'] });
    expect(job.status).toBe('success');
    expect(logs.stdout).toBe('out1\nout2\n');
    expect(logs.stderr).toBe('err1\nerr2\n');
  });

  it('answers logs with 409 while the job is pending or running', async () => {
    // A limit of 1 keeps the second job pending while the first runs.
    expect((await s.request('PATCH', `/users/${op.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 1 } })).status).toBe(200);
    const u = op;
    const first = await submit(s, u.token, { command: ['sleep', '2'] });
    const second = await submit(s, u.token, { command: ['true'] });
    await waitStatus(s, u.token, first.id, ['running']);
    expect((await getJob(s, u.token, second.id)).status).toBe('pending');
    for (const id of [first.id, second.id]) {
      const res = await s.request('GET', `/jobs/${id}/logs`, { token: u.token });
      expect(res.status).toBe(409);
      expect(typeof res.body.detail).toBe('string');
      expect(res.body.detail.length).toBeGreaterThan(0);
    }
    await waitTerminal(s, u.token, second.id);
    expect((await s.request('GET', `/jobs/${first.id}/logs`, { token: u.token })).status).toBe(200);
    expect((await s.request('GET', `/jobs/${second.id}/logs`, { token: u.token })).status).toBe(200);
    expect((await s.request('PATCH', `/users/${op.id}`, { token: s.adminToken, body: { max_concurrent_jobs: null } })).status).toBe(200);
  });

  it("passes the job's env to the child", async () => {
    const { job, logs } = await runJob(s, op.token, { command: ['sh', '-c', 'echo $BUILD_MODE'], env: { BUILD_MODE: 'release' } });
    expect(job.status).toBe('success');
    expect(logs.stdout).toBe('release\n');
  });

  it("gives the child only PATH, HOME, LANG and the job's env, never the server's secrets", async () => {
    const { job, logs } = await runJob(s, op.token, { command: ['env'], env: { FOO: 'bar', BUILD_MODE: 'release' } });
    expect(job.status).toBe('success');
    const names = logs.stdout.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('=')));
    expect(names.sort()).toEqual(['BUILD_MODE', 'FOO', 'HOME', 'LANG', 'PATH']);
    expect(logs.stdout).toContain('FOO=bar\n');
    for (const name of ['JWT_SECRET', 'DATABASE_URL', 'ADMIN_PASSWORD']) expect(logs.stdout).not.toContain(name);
    for (const value of [s.env.JWT_SECRET!, s.env.DATABASE_URL!, ADMIN_PASSWORD]) expect(logs.stdout).not.toContain(value);
  });

  it('runs a job without working_dir in a fresh <DATA_DIR>/runs/<id>, removed by purge', async () => {
    const { job, logs } = await runJob(s, op.token, { command: ['pwd'] });
    const expected = join(realpathSync(s.db.dataDir), 'runs', job.id);
    expect(job.status).toBe('success');
    expect(realpathSync(job.working_dir)).toBe(expected);
    expect(logs.stdout).toBe(expected + '\n');
    expect(existsSync(expected)).toBe(true);
    const purge = await s.request('DELETE', `/jobs/${job.id}/purge`, { token: op.token });
    expect(purge.status).toBe(204);
    expect(existsSync(expected)).toBe(false);
    // Each job gets its own directory.
    const other = await runJob(s, op.token, { command: ['pwd'] });
    expect(other.logs.stdout).toBe(join(realpathSync(s.db.dataDir), 'runs', other.job.id) + '\n');
  });

  it('turns invalid UTF-8 output into U+FFFD', async () => {
    const { job, logs } = await runJob(s, op.token, { command: ['printf', '\\377ok'] });
    expect(job.status).toBe('success');
    expect(logs.stdout).toBe('\uFFFDok');
  });
});
