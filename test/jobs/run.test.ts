// Submitting and running jobs: the JobRead shape, outcomes, logs, the
// child's environment and working directory; what a submission may not
// contain; and a job whose output is far beyond the log cap.
import { chmodSync, existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { getJob, getLogs, ISO_Z, JOB_READ_KEYS, runJob, submit, waitStatus, waitTerminal, type JobRead } from '../helpers/jobs.js';
import { ADMIN_PASSWORD, startServer, type TestServer } from '../helpers/server.js';

describe.each(PROVIDERS)('submitting and running jobs on %s', (provider) => {
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

  it('gives each of 90 simultaneous submissions (three users) its own job, stored exactly as sent', async () => {
    // Submissions that arrive together are written together (group commit): none may be lost, mixed up or reordered.
    const users = [op, await s.user('operator'), await s.user('operator')];
    const sent = Array.from({ length: 90 }, (_, i) => ({ who: users[i % 3]!, body: { name: `burst-${i}`, command: ['true', String(i)], env: { N: String(i) }, payload: { i } } }));
    const replies = await Promise.all(sent.map(({ who, body }) => s.request('POST', '/jobs', { token: who.token, body })));
    replies.forEach((res, i) => {
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ ...sent[i]!.body, owner_id: sent[i]!.who.id, batch_id: null });
    });
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(90);
    for (const who of users.slice(1)) {
      const listed = await s.request('GET', '/jobs?limit=100', { token: who.token });
      const mine = replies.filter((_, i) => sent[i]!.who === who).map((r) => r.body);
      // In submission-time order, as the list is ordered, and every field as the submit answered.
      expect(listed.body.map((j: JobRead) => [j.id, j.name, j.command, j.payload])).toEqual(
        [...mine].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id)).map((j) => [j.id, j.name, j.command, j.payload]),
      );
    }
    await Promise.all(replies.map((r, i) => waitTerminal(s, sent[i]!.who.token, r.body.id)));
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

  it('a program that does not exist fails with "spawn <program>: ENOENT" and no exit code', async () => {
    const { job } = await runJob(s, op.token, { command: ['/no/such/binary'] });
    expect(job.status).toBe('failed');
    expect(job.exit_code).toBeNull();
    expect(job.error).toBe('spawn /no/such/binary: ENOENT');
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

  it("purge leaves a working_dir the user named (inside the workspace) in place", async () => {
    const dir = join(s.db.dataDir, 'workspace', 'keep-me');
    mkdirSync(dir, { recursive: true });
    // Jobs run as a uid of their own: an administrator makes shared workspaces writable through a jobs group (JOB_GROUP).
    chmodSync(dir, 0o777);
    const { job } = await runJob(s, op.token, { command: ['sh', '-c', 'echo data > out.txt'], working_dir: dir });
    expect(job.status).toBe('success');
    expect((await s.request('DELETE', `/jobs/${job.id}/purge`, { token: op.token })).status).toBe(204);
    expect(existsSync(join(dir, 'out.txt'))).toBe(true);
  });

  it('turns invalid UTF-8 output into U+FFFD', async () => {
    const { job, logs } = await runJob(s, op.token, { command: ['printf', '\\377ok'] });
    expect(job.status).toBe('success');
    expect(logs.stdout).toBe('\uFFFDok');
  });

  // What POST /jobs refuses: shape errors are 422 (Pydantic v2 shape), rules
  // about the machine are 400 with a sentence, viewers are 403. A refused
  // submission creates nothing.
  describe('validation', () => {
    let workspace: string;
    beforeAll(() => {
      workspace = join(s.db.dataDir, 'workspace');
    });

    const post = (body: unknown, token = op.token) => s.request('POST', '/jobs', { token, body });

    async function jobCount(): Promise<number> {
      const res = await s.request('GET', '/jobs/stats', { token: s.adminToken });
      return res.body.total;
    }

    /** A 422 whose issues include one at `loc` (and, if given, of `type`). */
    function expect422(res: { status: number; body: any }, loc: (string | number)[], type?: string) {
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(Array.isArray(res.body.detail)).toBe(true);
      const issue = res.body.detail.find((i: any) => JSON.stringify(i.loc.slice(0, loc.length)) === JSON.stringify(loc));
      expect(issue, `no issue at ${loc.join('.')}: ${JSON.stringify(res.body.detail)}`).toBeTruthy();
      expect(typeof issue.msg).toBe('string');
      expect(typeof issue.type).toBe('string');
      if (type) expect(issue.type).toBe(type);
    }

    function expect400(res: { status: number; body: any }, ...fragments: (string | RegExp)[]) {
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(typeof res.body.detail).toBe('string');
      for (const f of fragments) expect(res.body.detail).toMatch(f);
    }

    it('422 for a missing name or command, with Pydantic-shaped issues', async () => {
      const before = await jobCount();
      expect422(await post({ command: ['true'] }), ['body', 'name'], 'missing');
      expect422(await post({ name: 'x' }), ['body', 'command'], 'missing');
      const noName = await post({ command: ['true'] });
      expect(noName.body.detail[0].msg).toBe('Field required');
      expect(await jobCount()).toBe(before);
    });

    it('422 for an empty command and for an empty program', async () => {
      expect422(await post({ name: 'x', command: [] }), ['body', 'command']);
      expect422(await post({ name: 'x', command: [''] }), ['body', 'command']);
      expect422(await post({ name: 'x', command: ['', 'arg'] }), ['body', 'command']);
    });

    it('422 for an env name that is not an identifier', async () => {
      expect422(await post({ name: 'x', command: ['true'], env: { '1BAD': 'x' } }), ['body', 'env']);
      expect422(await post({ name: 'x', command: ['true'], env: { 'A-B': 'x' } }), ['body', 'env']);
    });

    it('400 with a sentence for env names that change how programs load', async () => {
      const before = await jobCount();
      expect400(await post({ name: 'x', command: ['true'], env: { LD_PRELOAD: '/tmp/evil.so' } }), /LD_PRELOAD/, /not allowed/);
      expect400(await post({ name: 'x', command: ['true'], env: { NODE_OPTIONS: '--require /tmp/x.js' } }), /NODE_OPTIONS/);
      expect(await jobCount()).toBe(before);
    });

    it('422 for timeout_seconds outside 1..604800; both bounds are accepted', async () => {
      expect422(await post({ name: 'x', command: ['true'], timeout_seconds: 0 }), ['body', 'timeout_seconds']);
      expect422(await post({ name: 'x', command: ['true'], timeout_seconds: 604801 }), ['body', 'timeout_seconds']);
      expect422(await post({ name: 'x', command: ['true'], timeout_seconds: 1.5 }), ['body', 'timeout_seconds']);
      for (const t of [1, 604800]) {
        const job = await submit(s, op.token, { command: ['true'], timeout_seconds: t });
        expect(job.timeout_seconds).toBe(t);
        expect((await waitTerminal(s, op.token, job.id)).status).toBe('success');
      }
    });

    it('422 extra_forbidden for an unknown field', async () => {
      const res = await post({ name: 'x', command: ['true'], priority: 5 });
      expect422(res, ['body', 'priority'], 'extra_forbidden');
    });

    it('400 naming the rule for a working_dir that does not exist, is a file, is outside the roots, or escapes by symlink', async () => {
      const before = await jobCount();
      expect400(await post({ name: 'x', command: ['true'], working_dir: join(workspace, 'nope') }), /does not exist/);

      const file = join(workspace, 'a-file');
      writeFileSync(file, 'x');
      expect400(await post({ name: 'x', command: ['true'], working_dir: file }), /not a directory/);

      expect400(await post({ name: 'x', command: ['true'], working_dir: '/etc' }), /outside the allowed roots/);

      const link = join(workspace, 'escape');
      symlinkSync('/tmp', link);
      expect400(await post({ name: 'x', command: ['true'], working_dir: link }), /outside the allowed roots/);
      expect400(await post({ name: 'x', command: ['true'], working_dir: join(workspace, '..') }), /outside the allowed roots/);
      expect(await jobCount()).toBe(before);

      // A relative path is a shape error.
      expect422(await post({ name: 'x', command: ['true'], working_dir: 'workspace' }), ['body', 'working_dir']);

      // A real directory inside the workspace is fine.
      const ok = join(workspace, 'ok');
      mkdirSync(ok);
      const job = await submit(s, op.token, { command: ['pwd'], working_dir: ok });
      expect((await waitTerminal(s, op.token, job.id)).status).toBe('success');
    });

    it('403 when a viewer submits', async () => {
      const viewer = await s.user('viewer');
      const before = await jobCount();
      const res = await post({ name: 'x', command: ['true'] }, viewer.token);
      expect(res.status).toBe(403);
      expect(typeof res.body.detail).toBe('string');
      expect(await jobCount()).toBe(before);
    });
  });
});

// A job that prints far more than MAX_LOG_BYTES. SQLite only: the capture,
// truncation and back-pressure are the same engine code on both providers
// (only the stored chunk rows differ), and pushing 200 MB through a second
// server would cost the suite's time budget for no extra coverage.
const MiB = 1024 * 1024;

describe('huge output on sqlite', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite'); // default MAX_LOG_BYTES: 10 MiB
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('200 MB of stdout: success, stored output is exactly the first 10 MiB, truncated flag set, server memory stays bounded', async () => {
    // The server runs in this process, so its RSS is ours.
    globalThis.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 50);
    let job: JobRead;
    try {
      const submitted = await submit(s, s.adminToken, { name: 'flood', command: ['sh', '-c', "head -c 209715200 /dev/zero | tr '\\0' a"] });
      job = await waitTerminal(s, s.adminToken, submitted.id, 120_000);
    } finally {
      clearInterval(sampler);
    }
    expect(job.status).toBe('success');
    expect(job.exit_code).toBe(0);
    expect((peak - baseline) / MiB, `RSS grew by ${((peak - baseline) / MiB).toFixed(1)} MiB`).toBeLessThan(100);

    const logs = await getLogs(s, s.adminToken, job.id);
    expect(logs.stdout_truncated).toBe(true);
    expect(logs.stderr_truncated).toBe(false);
    expect(logs.stdout.length).toBe(10 * MiB);
    expect(/^a*$/.test(logs.stdout)).toBe(true);
    expect(logs.stderr).toBe('');
  });
});
