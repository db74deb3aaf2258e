// The job commands of the real executable against a real server: submit
// --follow/--wait with the job's exit status, following across a dropped
// connection, ls/show/logs/wait/cancel/purge/stats agreeing with REST.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type TcpProxy } from '../chaos/tcpProxy.js';
import { jobGate, waitRunning, waitTerminal, type JobRead } from '../helpers/jobs.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, PG_ADMIN_URL, type TestDatabase } from '../helpers/db.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, restClient, startServer, testServerEnv, tokenClient, waitFor, type TestServer } from '../helpers/server.js';
import { cli, start } from './cli.js';

let s: TestServer;
let operator: { id: string; email: string; token: string };
let env: Record<string, string>;

beforeAll(async () => {
  // A small output cap, so that a job can overflow it quickly.
  s = await startServer('sqlite', { MAX_LOG_BYTES: '65536' });
  operator = await s.user('operator');
  env = { JOBRUNNER_SERVER: s.url, JOBRUNNER_TOKEN: operator.token, JOBRUNNER_CONFIG: '/nonexistent/jobrunner.json' };
});
afterAll(async () => {
  await s?.stop();
});

const jr = (args: string[], input?: string) => cli(args, { env, input });

describe('submit', () => {
  it('--follow streams stdout and stderr to their own streams and exits with the job\'s exit code', async () => {
    const ok = await jr(['submit', '--follow', '--', 'sh', '-c', 'echo out1; echo err1 >&2; echo out2']);
    expect(ok).toMatchObject({ code: 0, stdout: 'out1\nout2\n', stderr: 'err1\n' });

    const three = await jr(['submit', '--follow', 'sh', '-c', 'echo before; exit 3']);
    expect(three).toMatchObject({ code: 3, stdout: 'before\n', stderr: '' });
  });

  it('--follow: a job killed by a signal exits 128 + the signal number', async () => {
    expect((await jr(['submit', '-f', '--', 'sh', '-c', 'kill -KILL $$'])).code).toBe(137);
    expect((await jr(['submit', '-f', '--', 'sh', '-c', 'kill -TERM $$'])).code).toBe(143);
  });

  it('--follow: a program that does not exist exits 127, a timeout 124', async () => {
    const missing = await jr(['submit', '--follow', '--', 'no-such-program-here']);
    expect(missing.code).toBe(127);
    const slow = await jr(['submit', '--timeout', '1', '--follow', '--', 'sleep', '30']);
    expect(slow.code).toBe(124);
  });

  it('--wait prints the outcome and exits with the code; --json the final job, as REST has it', async () => {
    const r = await jr(['submit', '--name', 'waited', '--env', 'GREETING=hi there', '--wait', '--', 'sh', '-c', 'echo "$GREETING"; exit 4']);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/^\S+ failed exit 4\n$/);
    const id = r.stdout.split(' ')[0]!;
    const rest = await s.request('GET', `/jobs/${id}`, { token: operator.token });
    expect(rest.body).toMatchObject({ name: 'waited', env: { GREETING: 'hi there' }, exit_code: 4, status: 'failed' });
    expect((await s.request('GET', `/jobs/${id}/logs`, { token: operator.token })).body.stdout).toBe('hi there\n');

    const j = await jr(['submit', '--wait', '--json', '--', 'true']);
    expect(j.code).toBe(0);
    const job = JSON.parse(j.stdout) as JobRead;
    expect(job).toEqual((await s.request('GET', `/jobs/${job.id}`, { token: operator.token })).body);
  });

  it('without --wait prints the id at once; options after the program belong to the job', async () => {
    const r = await jr(['submit', 'sh', '-c', 'echo "$0 $1"', '--name', '-x']);
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    const job = await waitTerminal(s, operator.token, id);
    expect(job).toMatchObject({ name: 'sh', command: ['sh', '-c', 'echo "$0 $1"', '--name', '-x'], status: 'success' });
  });

  it('a field the server refuses: its reason, the field named as the option; exit 1', async () => {
    const long = await jr(['submit', '--name', 'x'.repeat(201), '--', 'true']);
    expect(long.code).toBe(1);
    expect(long.stderr).toBe('error: invalid input:\n  --name: Too big: expected string to have <=200 characters\n');
    const r = await jr(['submit', '--cwd', '/etc', '--', 'true']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: working_dir \/etc is outside the allowed roots .*JOBS_ALLOWED_ROOTS/);
    const env1 = await jr(['submit', '--env', 'NOEQUALS', '--', 'true']);
    expect(env1.code).toBe(2);
    expect(env1.stderr).toContain('--env takes NAME=VALUE, not "NOEQUALS"');
    const conflict = await jr(['submit', '--wait', '--follow', '--', 'true']);
    expect(conflict.code).toBe(2);
    const none = await jr(['submit', '--name', 'x']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('`submit` needs CMD');
  });
});

describe('following across a dropped connection', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    const port = Number(new URL(s.url).port);
    proxy = await startProxy('127.0.0.1', port);
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('resumes from the last chunk received: every line once, in order, then the job\'s exit code', async () => {
    const gate = jobGate('cli-follow');
    // 30 lines, a pause until the gate opens, 30 more: the cut falls in the pause and
    // the second half is written while the client is away.
    const script = `for i in $(seq 1 30); do echo "line $i"; done; while [ ! -e ${gate} ]; do sleep 0.05; done; for i in $(seq 31 60); do echo "line $i"; sleep 0.01; done; exit 7`;
    const run = start(['submit', '--follow', '--', 'sh', '-c', script], { env: { ...env, JOBRUNNER_SERVER: proxy.url('http') } });
    await waitFor(() => run.stdout().includes('line 30\n'), 30_000);
    expect(proxy.connections).toBeGreaterThan(0);
    proxy.cut(); // the connection is destroyed and new ones are refused
    writeFileSync(gate, '');
    const id = (await s.request('GET', '/jobs?order=desc&limit=1', { token: operator.token })).body[0].id as string;
    await waitTerminal(s, operator.token, id);
    await proxy.restore();
    const r = await run.done;
    const expected = Array.from({ length: 60 }, (_, i) => `line ${i + 1}\n`).join('');
    expect(r.stdout).toBe(expected);
    expect(r.code).toBe(7);
  });

  it('a connection cut while output flows: no line lost or repeated', async () => {
    const gate = jobGate('cli-follow2');
    const script = `i=0; while [ ! -e ${gate} ] || [ $i -lt 400 ]; do i=$((i+1)); echo "n $i"; sleep 0.005; done`;
    const run = start(['submit', '--follow', '--', 'sh', '-c', script], { env: { ...env, JOBRUNNER_SERVER: proxy.url('http') } });
    await waitFor(() => run.stdout().includes('n 50\n'), 30_000);
    proxy.cut('reset'); // reconnects are accepted and dropped at once for a while
    await new Promise((r) => setTimeout(r, 300));
    await proxy.restore();
    await waitFor(() => /n (\d+)\n$/.test(run.stdout()) && Number(/n (\d+)\n$/.exec(run.stdout())![1]) > 150, 30_000);
    proxy.cut();
    await proxy.restore();
    writeFileSync(gate, '');
    const r = await run.done;
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(400);
    expect(lines).toEqual(lines.map((_, i) => `n ${i + 1}`));
  });

  it('a silent connection (a partition that closes nothing) is given up after JOBRUNNER_IDLE_TIMEOUT and resumed', async () => {
    const gate = jobGate('cli-hold');
    const script = `for i in $(seq 1 10); do echo "line $i"; done; while [ ! -e ${gate} ]; do sleep 0.05; done; for i in $(seq 11 20); do echo "line $i"; done`;
    // On a terminal, so that the reconnect notice shows when the client gives up on the silent connection.
    const run = start(['submit', '--follow', '--', 'sh', '-c', script], { env: { ...env, JOBRUNNER_SERVER: proxy.url('http'), JOBRUNNER_IDLE_TIMEOUT: '1' }, tty: true });
    await waitFor(() => run.stdout().includes('line 10\r\n'), 30_000);
    proxy.cut('hold');
    writeFileSync(gate, '');
    await waitFor(() => run.stdout().includes('[jobrunner] connection lost; resuming after chunk'), 30_000);
    await proxy.restore();
    const r = await run.done;
    expect(r.code).toBe(0);
    const lines = r.stdout.split(/\r?\n/).filter((l) => l.startsWith('line '));
    expect(lines).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 1}`));
  });
});

describe('ls, show, logs, wait, cancel, purge, stats', () => {
  it('ls --json lists newest first, as GET /jobs?order=desc; filters by status and name', async () => {
    const ids: string[] = [];
    for (const name of ['alpha-1', 'beta-2', 'alpha-3']) ids.push((await jr(['submit', '--wait', '--name', name, '--', 'true'])).stdout.split(' ')[0]!);
    const fail = (await jr(['submit', '--wait', '--name', 'alpha-fail', '--', 'false'])).stdout.split(' ')[0]!;

    const r = await jr(['ls', '--json', '--limit', '4']);
    expect(r.code).toBe(0);
    const listed = JSON.parse(r.stdout) as JobRead[];
    expect(listed.map((j) => j.id)).toEqual([fail, ...ids.slice().reverse()]);
    const rest = await s.request('GET', '/jobs?order=desc&limit=4', { token: operator.token });
    expect(listed).toEqual(rest.body);

    const alphas = JSON.parse((await jr(['ls', '--json', '--name', 'alpha', '--status', 'success'])).stdout) as JobRead[];
    expect(alphas.map((j) => j.name)).toEqual(['alpha-3', 'alpha-1']);

    const table = await jr(['ls', '--limit', '2']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+STATUS\s+EXIT\s+CREATED\s+TOOK\s+NAME\s+COMMAND$/);
    expect(table.stdout.split('\n')[1]).toMatch(new RegExp(`^${fail}\\s+failed\\s+1\\s`));
    expect(table.stdout).not.toContain('\x1b['); // no colour when stdout is not a terminal

    const bad = await jr(['ls', '--status', 'done']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("error: invalid input:\n  --status: Input should be one or more of 'pending', 'running', 'success', 'failed', 'canceled', comma-separated or repeated; not 'done'\n");
  });

  it('show, logs and wait agree with REST; unknown ids are exit 4 "no job <id>"', async () => {
    const id = (await jr(['submit', '--name', 'shown', '--wait', '--', 'sh', '-c', 'echo to-out; echo to-err >&2; exit 2'])).stdout.split(' ')[0]!;
    const show = await jr(['show', id, '--json']);
    expect(JSON.parse(show.stdout)).toEqual((await s.request('GET', `/jobs/${id}`, { token: operator.token })).body);
    const human = await jr(['show', id]);
    expect(human.stdout).toMatch(/^status:\s+failed$/m);
    expect(human.stdout).toMatch(/^exit code:\s+2$/m);
    expect(human.stdout).toContain('["sh","-c","echo to-out; echo to-err >&2; exit 2"]');

    expect(await jr(['logs', id])).toMatchObject({ code: 0, stdout: 'to-out\n', stderr: 'to-err\n' });
    expect(await jr(['logs', '-f', id])).toMatchObject({ code: 2, stdout: 'to-out\n', stderr: 'to-err\n' });
    expect(JSON.parse((await jr(['logs', id, '--json'])).stdout)).toEqual((await s.request('GET', `/jobs/${id}/logs`, { token: operator.token })).body);
    const waited = await jr(['wait', id]);
    expect(waited.code).toBe(2);
    expect(waited.stdout).toBe(`${id} failed exit 2\n`);

    for (const cmd of ['show', 'logs', 'wait', 'cancel', 'purge']) {
      const r = await jr([cmd, 'no-such-id']);
      expect([cmd, r.code, r.stderr]).toEqual([cmd, 4, 'error: no job no-such-id\n']);
    }
    // Another operator's job does not exist for this one either.
    const other = await s.user('operator');
    const theirs = (await cli(['submit', '--', 'true'], { env: { ...env, JOBRUNNER_TOKEN: other.token } })).stdout.trim();
    expect(await jr(['show', theirs])).toMatchObject({ code: 4, stderr: `error: no job ${theirs}\n` });
  });

  it('logs of a running job points at -f; wait follows it to its end; cancel and purge', async () => {
    const gate = jobGate('cli-cancel');
    const id = (await jr(['submit', '--', 'sh', '-c', `echo started; while [ ! -e ${gate} ]; do sleep 0.05; done`])).stdout.trim();
    await waitRunning(s, operator.token, id);
    const early = await jr(['logs', id]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`job ${id} has not ended yet: \`jobrunner logs -f ${id}\``);

    const waiting = start(['wait', id], { env });
    const canceled = await jr(['cancel', id]);
    expect(canceled.code).toBe(0);
    expect(canceled.stdout).toMatch(new RegExp(`^(canceled job ${id}|cancel requested: job ${id} is still running.*)\\n$`));
    const w = await waiting.done;
    expect(w.code).toBe(130);
    expect(w.stdout).toMatch(new RegExp(`^${id} canceled`));

    const again = await jr(['cancel', id]);
    expect(again).toMatchObject({ code: 1, stdout: '', stderr: 'error: Job is already canceled\n' });

    expect(await jr(['purge', id])).toMatchObject({ code: 0, stdout: `purged job ${id}\n` });
    expect((await s.request('GET', `/jobs/${id}`, { token: operator.token })).status).toBe(404);
  });

  it('purge of a running job: the server\'s 409 reason, exit 1', async () => {
    const gate = jobGate('cli-purge');
    const id = (await jr(['submit', '--', 'sh', '-c', `while [ ! -e ${gate} ]; do sleep 0.05; done`])).stdout.trim();
    await waitRunning(s, operator.token, id);
    const r = await jr(['purge', id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .+\n$/);
    writeFileSync(gate, '');
    await waitTerminal(s, operator.token, id);
  });

  it('on a terminal: colours (not with NO_COLOR), a live status line while waiting, and the outcome of --follow', async () => {
    const id = (await jr(['submit', '--wait', '--', 'true'])).stdout.split(' ')[0]!;
    const coloured = await cli(['ls', '--limit', '1'], { env, tty: true });
    expect(coloured.stdout).toContain('\x1b[1mID\x1b[0m');
    expect(coloured.stdout).toContain('\x1b[32msuccess\x1b[0m');
    const plain = await cli(['ls', '--limit', '1'], { env: { ...env, NO_COLOR: '1' }, tty: true });
    expect(plain.stdout).not.toContain('\x1b[');
    expect(plain.stdout).toMatch(new RegExp(`${id}\\s+success`));

    const waited = await cli(['submit', '--wait', '--', 'sleep', '1'], { env, tty: true });
    expect(waited.code).toBe(0);
    expect(waited.stdout).toMatch(/\r\x1b\[2Kjob \S+ \x1b\[(90mpending|34mrunning)/); // the status line, rewritten in place
    expect(waited.stdout).toMatch(/\r\x1b\[2K\S+ \x1b\[32msuccess\x1b\[0m exit 0\r\n$/);

    const followed = await cli(['submit', '--follow', '--', 'sh', '-c', 'echo hi; exit 6'], { env, tty: true });
    expect(followed.code).toBe(6);
    expect(followed.stdout).toMatch(/^hi\r\n.*\[jobrunner\] job \S+ failed \(exit 6\)/s);
  });

  it('output cut at MAX_LOG_BYTES: follow and logs keep what was kept and say so on stderr', async () => {
    const r = await jr(['submit', '--follow', '--', 'sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x; echo; echo done >&2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('x'.repeat(65536));
    expect(r.stderr).toBe('done\n[jobrunner] stdout truncated after 65536 bytes\n');
    const id = JSON.parse((await jr(['ls', '--json', '--limit', '1'])).stdout)[0].id as string;
    const logs = await jr(['logs', id]);
    expect(logs.stdout).toBe('x'.repeat(65536));
    expect(logs.stderr).toBe('done\n[jobrunner] stdout truncated after 65536 bytes\n');
  });

  it('stats --json is GET /jobs/stats', async () => {
    const r = await jr(['stats', '--json']);
    expect(JSON.parse(r.stdout)).toEqual((await s.request('GET', '/jobs/stats', { token: operator.token })).body);
    expect((await jr(['stats'])).stdout).toMatch(/^total\s+\d+$/m);
  });
});

describe('on PostgreSQL', () => {
  let pg: TestServer;
  beforeAll(async () => {
    pg = await startServer('postgresql');
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it('submit --follow and ls --json', async () => {
    const penv = { JOBRUNNER_SERVER: pg.url, JOBRUNNER_TOKEN: pg.adminToken, JOBRUNNER_CONFIG: join('/nonexistent', 'c.json') };
    const r = await cli(['submit', '--follow', '--', 'sh', '-c', 'echo pg; exit 5'], { env: penv });
    expect(r).toMatchObject({ code: 5, stdout: 'pg\n' });
    const listed = JSON.parse((await cli(['ls', '--json'], { env: penv })).stdout) as JobRead[];
    expect(listed).toEqual((await pg.request('GET', '/jobs?order=desc&limit=20', { token: pg.adminToken })).body);
  });
});

// A running job whose worker is alive (its lease current) but never confirms
// the kill: the server answers 202 after its bounded wait, with the stop
// recorded. The worker is a row this test writes: an API with no worker runs
// nothing itself, so nothing else can confirm.
describe('cancel that the worker does not confirm in time', () => {
  let db: TestDatabase;
  let app: App;
  let url: string;
  let admin: string;
  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    app = await buildApp(loadConfig(testServerEnv(db, { KILL_GRACE_SECONDS: '0', HEARTBEAT_SECONDS: '1' })), { worker: false, log: createLogger('error') });
    url = await app.start();
    admin = await tokenClient(`${url}/api/v1`)(ADMIN_EMAIL, ADMIN_PASSWORD);
  });
  afterAll(async () => {
    await app?.stop(0);
    await db?.drop();
  });

  it('says the cancel is recorded and the job still runs, exit 0; --json prints the job with cancel_requested', async () => {
    const aenv = { JOBRUNNER_SERVER: url, JOBRUNNER_TOKEN: admin, JOBRUNNER_CONFIG: join('/nonexistent', 'c.json') };
    const ghost = 'ghost-host:4242:0123456789ab';
    const prisma = app.db.prisma;
    await prisma.worker.create({ data: { id: ghost, hostname: 'ghost-host', pid: 4242, heartbeatAt: new Date(), leaseExpiresAt: new Date(Date.now() + 3_600_000) } });
    const request = restClient(`${url}/api/v1`);
    const running = async () => {
      const res = await request('POST', '/jobs', { token: admin, body: { name: 'unconfirmed', command: ['sleep', '300'] } });
      await prisma.job.update({ where: { id: res.body.id }, data: { status: 'running', startedAt: new Date(), workerId: ghost, attempt: 1 } });
      return res.body.id as string;
    };
    const [a, b] = [await running(), await running()];
    // Both wait out the same bounded wait (HEARTBEAT_SECONDS + KILL_GRACE_SECONDS + 5 s) together.
    const [text, json] = await Promise.all([cli(['cancel', a], { env: aenv }), cli(['cancel', '--json', b], { env: aenv })]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toBe(`cancel requested: job ${a} is still running; its worker stops it (\`jobrunner wait ${a}\`)\n`);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: b, status: 'running', cancel_requested: true });

    // A batch whose job is held the same way: the batch is printed, then what is not confirmed yet.
    const batch = await request('POST', '/job-batches', { token: admin, body: { name: 'held', jobs: [{ name: 'held', command: ['sleep', '300'] }] } });
    await prisma.job.update({ where: { id: batch.body.jobs[0].id }, data: { status: 'running', startedAt: new Date(), workerId: ghost, attempt: 1 } });
    const batchCancel = await cli(['batch', 'cancel', batch.body.id], { env: aenv });
    expect(batchCancel.code).toBe(0);
    expect(batchCancel.stdout).toMatch(new RegExp(`\\ncancel requested: 1 job\\(s\\) still running; their workers stop them \\(\`jobrunner batch show ${batch.body.id}\`\\)\\n$`));
  }, 60_000);
});

// The server is up but its database does not answer (PostgreSQL cut behind a
// proxy this test owns): a command says so and exits 5, like an unreachable
// server; `wait` keeps trying and ends with the job's code once it is back.
describe('a server whose database does not answer', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let app: App;
  let penv: Record<string, string>;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const pgUrl = new URL(PG_ADMIN_URL);
    proxy = await startProxy(pgUrl.hostname, Number(pgUrl.port || 5432));
    app = await buildApp(loadConfig(testServerEnv(db, { DATABASE_URL: proxy.via(db.url) })), { log: createLogger('error') });
    const url = await app.start();
    penv = { JOBRUNNER_SERVER: url, JOBRUNNER_TOKEN: await tokenClient(`${url}/api/v1`)(ADMIN_EMAIL, ADMIN_PASSWORD), JOBRUNNER_CONFIG: join('/nonexistent', 'c.json') };
  });
  afterAll(async () => {
    await proxy?.restore();
    await app?.stop(0);
    await proxy?.close();
    await db?.drop();
  });

  it('ls exits 5 saying the server is unavailable and why; wait rides the outage out and exits with the job\'s code', async () => {
    const id = (await cli(['submit', '--', 'sh', '-c', 'sleep 2; exit 3'], { env: penv })).stdout.trim();
    const waiting = start(['wait', id], { env: penv });
    proxy.cut();
    try {
      const ls = await cli(['ls'], { env: penv });
      expect(ls.code).toBe(5);
      expect(ls.stderr).toMatch(/^error: http:\/\/127\.0\.0\.1:\d+ is unavailable \(503: The database is not answering; retry in a few seconds/);
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      await proxy.restore();
    }
    expect((await waiting.done).code).toBe(3);
  }, 60_000);
});
