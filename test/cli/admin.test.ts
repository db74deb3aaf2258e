// Batches and the admin commands of the real executable against a real
// server, checked against what REST says.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobGate, waitRunning, waitTerminal } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { cli } from './cli.js';

let s: TestServer;
let dir: string;
let admin: Record<string, string>;

beforeAll(async () => {
  s = await startServer('sqlite');
  dir = mkdtempSync(join(tmpdir(), 'jobrunner-cli-admin-'));
  admin = { JOBRUNNER_SERVER: s.url, JOBRUNNER_TOKEN: s.adminToken, JOBRUNNER_CONFIG: join(dir, 'none.json') };
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await s?.stop();
});

interface Batch {
  id: string;
  name: string;
  status: string;
  job_counts: Record<string, number>;
  jobs: { id: string; name: string; status: string }[];
}

describe('batch', () => {
  it('submit from a file and from stdin; ls newest first; show; all as REST has them', async () => {
    const file = join(dir, 'batch.json');
    writeFileSync(file, JSON.stringify({ name: 'nightly', description: 'two steps', jobs: [{ name: 'one', command: ['echo', '1'] }, { name: 'two', command: ['sh', '-c', 'exit 2'] }] }));
    const r = await cli(['batch', 'submit', file, '--json'], { env: admin });
    expect(r.code).toBe(0);
    const made = JSON.parse(r.stdout) as Batch;
    expect(made).toMatchObject({ name: 'nightly', jobs: [{ name: 'one' }, { name: 'two' }] });
    for (const j of made.jobs) await waitTerminal(s, s.adminToken, j.id);

    const fromStdin = await cli(['batch', 'submit', '-'], { env: admin, input: JSON.stringify({ name: 'piped', jobs: [{ name: 'p', command: ['true'] }] }) });
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.stdout).toMatch(/^batch \S+ "piped": (pending|running|success) \(1 jobs/);

    const listed = JSON.parse((await cli(['batch', 'ls', '--json'], { env: admin })).stdout) as Batch[];
    expect(listed.map((b) => b.name)).toEqual(['piped', 'nightly']);
    expect(listed).toEqual((await s.request('GET', '/job-batches?order=desc&limit=20', { token: s.adminToken })).body);

    const shown = await cli(['batch', 'show', made.id], { env: admin });
    expect(shown.stdout).toContain(`batch ${made.id} "nightly": failed (2 jobs: 1 success, 1 failed)`);
    expect(shown.stdout).toMatch(new RegExp(`^${made.jobs[1]!.id}\\s+failed\\s+2\\s`, 'm'));
    expect(JSON.parse((await cli(['batch', 'show', made.id, '--json'], { env: admin })).stdout)).toEqual((await s.request('GET', `/job-batches/${made.id}`, { token: s.adminToken })).body);
  });

  it('cancel stops its running jobs', async () => {
    const gate = jobGate('cli-batch');
    const body = { name: 'long', jobs: [{ name: 'hold', command: ['sh', '-c', `while [ ! -e ${gate} ]; do sleep 0.05; done`] }] };
    const made = JSON.parse((await cli(['batch', 'submit', '-', '--json'], { env: admin, input: JSON.stringify(body) })).stdout) as Batch;
    await waitRunning(s, s.adminToken, made.jobs[0]!.id);
    const r = await cli(['batch', 'cancel', made.id, '--json'], { env: admin });
    expect(r.code).toBe(0);
    await waitTerminal(s, s.adminToken, made.jobs[0]!.id);
    expect((await s.request('GET', `/job-batches/${made.id}`, { token: s.adminToken })).body.status).toBe('canceled');
  });

  it('errors: a file that is not there or not JSON, an invalid batch (422 with the field), an unknown id', async () => {
    expect(await cli(['batch', 'submit', join(dir, 'missing.json')], { env: admin })).toMatchObject({ code: 1, stderr: `error: cannot read ${join(dir, 'missing.json')}: ENOENT\n` });
    const notJson = await cli(['batch', 'submit', '-'], { env: admin, input: '{nope' });
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toContain('error: stdin is not JSON');
    const invalid = await cli(['batch', 'submit', '-'], { env: admin, input: JSON.stringify({ name: 'x', jobs: [] }) });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/^error: invalid input:\n {2}jobs: /);
    for (const sub of ['show', 'cancel']) expect(await cli(['batch', sub, 'nope'], { env: admin })).toMatchObject({ code: 4, stderr: 'error: no batch nope\n' });
  });
});

describe('users and limits', () => {
  it('users create (password from stdin), ls, update by email; the new user can log in', async () => {
    const email = `cli-made-${Date.now()}@example.com`;
    const r = await cli(['users', 'create', '--email', email, '--role', 'viewer', '--json'], { env: admin, input: 'NewUserPass123!\n' });
    expect(r.code).toBe(0);
    const user = JSON.parse(r.stdout) as { id: string; role: string };
    expect(user.role).toBe('viewer');
    expect(await s.token(email, 'NewUserPass123!')).toBeTruthy();

    const ls = JSON.parse((await cli(['users', 'ls', '--json'], { env: admin })).stdout);
    expect(ls).toEqual((await s.request('GET', '/users', { token: s.adminToken })).body);
    expect((await cli(['users', 'ls'], { env: admin })).stdout).toMatch(new RegExp(`^${user.id}\\s+${email}\\s+viewer\\s+yes\\s+default`, 'm'));

    const up = await cli(['users', 'update', email, '--role', 'operator', '--max-jobs', '2', '--json'], { env: admin });
    expect(up.code).toBe(0);
    expect(JSON.parse(up.stdout)).toMatchObject({ id: user.id, role: 'operator', max_concurrent_jobs: 2 });
    const off = await cli(['users', 'update', user.id, '--deactivate', '--max-jobs', 'none', '--json'], { env: admin });
    expect(JSON.parse(off.stdout)).toMatchObject({ is_active: false, max_concurrent_jobs: null });
    await expect(s.token(email, 'NewUserPass123!')).rejects.toThrow(/401/);
  });

  it('create-user (the server command, straight into the database) takes the password from stdin; the server then lets the user in', async () => {
    const email = `straight-${Date.now()}@example.com`;
    const dbEnv = { DATA_DIR: s.env.DATA_DIR!, DATABASE_URL: s.env.DATABASE_URL!, JWT_SECRET: s.env.JWT_SECRET!, LOG_LEVEL: 'error' };
    const r = await cli(['create-user', '--email', email, '--role', 'viewer'], { env: dbEnv, input: 'StraightPass123!\n' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^created viewer ${email} \\(\\S+\\)\n$`));
    expect(await s.token(email, 'StraightPass123!')).toBeTruthy();
    expect(await cli(['create-user', '--role', 'viewer'], { env: dbEnv })).toMatchObject({ code: 2, stderr: 'error: `create-user` needs --email\nrun `jobrunner create-user --help` for its options\n' });
  });

  it('users: usage errors, a duplicate email (the server\'s reason), an unknown user', async () => {
    expect((await cli(['users', 'create', '--role', 'viewer'], { env: admin })).code).toBe(2);
    expect(await cli(['users', 'update', 'someone@example.com'], { env: admin })).toMatchObject({ code: 2 });
    const king = await cli(['users', 'update', 'x', '--role', 'king'], { env: admin });
    expect(king.code).toBe(1);
    expect(king.stderr).toMatch(/^error: invalid input:\n {2}--role: /);
    const dup = await cli(['users', 'create', '--email', 'admin@example.com'], { env: admin, input: 'Whatever123!' });
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^error: A user with this email already/);
    expect(await cli(['users', 'update', 'nobody@example.com', '--activate'], { env: admin })).toMatchObject({ code: 4, stderr: 'error: no user nobody@example.com\n' });
    expect(await cli(['users', 'update', 'no-such-id', '--activate'], { env: admin })).toMatchObject({ code: 4, stderr: 'error: no user no-such-id\n' });
  });

  it('limits set (default and one user\'s) and get, as GET /admin/limits says', async () => {
    const operator = await s.user('operator');
    expect((await cli(['limits', 'set', '7'], { env: admin })).stdout).toContain('default: 7 running jobs per user');
    const r = await cli(['limits', 'set', '--user', operator.email, '3'], { env: admin });
    expect(r.code).toBe(0);
    const get = JSON.parse((await cli(['limits', 'get', '--json'], { env: admin })).stdout);
    expect(get).toEqual((await s.request('GET', '/admin/limits', { token: s.adminToken })).body);
    expect(get).toMatchObject({ default_max_concurrent_jobs: 7, overrides: expect.arrayContaining([{ user_id: operator.id, email: operator.email, max_concurrent_jobs: 3 }]) });
    expect((await cli(['limits', 'get'], { env: admin })).stdout).toMatch(new RegExp(`^${operator.id}\\s+${operator.email}\\s+3$`, 'm'));
    await cli(['limits', 'set', '--user', operator.id, 'none'], { env: admin });
    expect((await s.request('GET', '/admin/limits', { token: s.adminToken })).body.overrides).not.toContainEqual(expect.objectContaining({ user_id: operator.id }));

    expect((await cli(['limits', 'set', 'none'], { env: admin })).code).toBe(2);
    expect((await cli(['limits', 'set', 'lots'], { env: admin })).stderr).toContain('takes a whole number, not "lots"');
  });
});
