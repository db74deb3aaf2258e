// Job isolation (issue #11), written as the attacker: an operator who may
// submit any command tries to reach what is not theirs — the server's
// environment and data directory, other users' jobs, the host's process
// table — to outlive their job, to exhaust the machine past the limits they
// were given, to write through descriptors the server holds, and to swap a
// working directory for a symlink while their job waits. Each numbered `it`
// is one attack, and each fails on the code before the isolation work
// (f6d6249); 13 and the last test check that what worked before still works.
//
// Servers: an in-process one (`s`, jobs by operators A, B, C) and two real
// CLI servers run as children, so that their process environment really
// holds their secrets: X (JWT_SECRET in its environment) and Y (no
// JWT_SECRET: the secret is generated into DATA_DIR/jwt-secret; DATA_DIR
// under /tmp).
//
// Markers: processes a job starts carry a fresh marker in their command
// line (`sleep 1141.48213`; GNU sleep takes fractions), passed to shells
// through the environment so that no shell's own command line holds it; the
// test finds them on the host by scanning /proc.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJob, getLogs, runJob, submit, waitTerminal, type Api, type JobRead } from '../helpers/jobs.js';
import {
  attackDataDir, attackOtherUsersJob, attackServerEnviron, attackServerPids,
  hostPidsWithMarker, killMarked, marker, startCliServer, startedRunning, survivorsAfter, type CliServer,
} from '../helpers/isolation.js';
import { cgroup2Mount, cgroupProcs, jobCgroups } from '../helpers/cgroups.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startServer, waitFor, type TestServer } from '../helpers/server.js';

type User = Awaited<ReturnType<TestServer['user']>>;

const JWT_SECRET = `isolation-jwt-${randomBytes(12).toString('hex')}-0123456789`;
// Enough slots that the attacks' jobs never wait for each other.
const ROOMY = { WORKER_CONCURRENCY: '32', DEFAULT_MAX_CONCURRENT_JOBS: '32' };
const CGROUP2 = cgroup2Mount();

const markers = new Set<string>();
/** A fresh marker, killed on the host after the suite whatever happened. */
const mark = (base: string) => {
  const m = marker(base);
  markers.add(m);
  return m;
};

const lines = (text: string) => text.split('\n').filter(Boolean);

/** Creates an operator on a server through the API and logs in as them. */
async function operator(srv: Api & { token(e: string, p: string): Promise<string> }): Promise<string> {
  const admin = await srv.token(ADMIN_EMAIL, ADMIN_PASSWORD);
  const email = `op-${randomBytes(4).toString('hex')}@example.com`;
  const password = 'Operator-Pass-123';
  const res = await srv.request('POST', '/users', { token: admin, body: { email, password, role: 'operator' } });
  if (res.status !== 201) throw new Error(`create operator: ${res.status} ${res.text}`);
  return srv.token(email, password);
}

async function cancel(srv: Api, token: string, id: string): Promise<void> {
  const res = await srv.request('POST', `/jobs/${id}/cancel`, { token });
  expect(res.status, res.text).toBeLessThan(300);
}

describe('job isolation (issue #11): attacks by an operator', () => {
  let s: TestServer;
  let a: User;
  let b: User;
  let x: CliServer;
  let xDir: string;
  let xToken: string;
  let y: CliServer;
  let yDir: string;
  let yToken: string;
  // A file the in-process server (this process) holds open.
  let fdFile: string;

  beforeAll(async () => {
    xDir = mkdtempSync('/tmp/jobrunner-iso-x-');
    yDir = mkdtempSync('/tmp/jobrunner-iso-y-');
    fdFile = join(xDir, 'server-held-file');
    writeFileSync(fdFile, '');
    const common = { HOST: '127.0.0.1', ADMIN_EMAIL, ADMIN_PASSWORD, LOG_LEVEL: 'error', KILL_GRACE_SECONDS: '1', ...ROOMY };
    [s, x, y] = await Promise.all([
      startServer('sqlite', ROOMY),
      startCliServer({ ...common, DATA_DIR: join(xDir, 'data'), JWT_SECRET }),
      startCliServer({ ...common, DATA_DIR: join(yDir, 'data') }),
    ]);
    [a, b, xToken, yToken] = await Promise.all([s.user('operator'), s.user('operator'), operator(x), operator(y)]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([x?.kill(), y?.kill()]);
    await s?.stop();
    killMarked(markers);
    for (const d of [xDir, yDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it("1. a job cannot read the server's environment (/proc/<server>/environ), nor see the server in its /proc", async () => {
    await Promise.all([
      attackServerEnviron(x, xToken, x.pid, [JWT_SECRET, 'JWT_SECRET=']),
      attackServerPids(x, xToken, x.pid),
      attackServerPids(s, a.token, process.pid),
    ]);
  });

  it("2. a job cannot read the database or the generated JWT secret in DATA_DIR, nor list other jobs' run directories", async () => {
    await attackDataDir(y, yToken, await y.token(ADMIN_EMAIL, ADMIN_PASSWORD), join(yDir, 'data'));
  });

  it("3. B's job cannot kill A's running job nor read its environment, and A and B run as different non-root uids", async () => {
    const { victimId, victimHostUid, attacker } = await attackOtherUsersJob(s, a.token, b.token, mark('3001'));
    const uidA = lines((await getLogs(s, a.token, victimId)).stdout)[0];
    const uidB = lines(attacker.logs.stdout)[0];
    expect(uidA).toMatch(/^\d+$/);
    expect(uidB).toMatch(/^\d+$/);
    expect(uidA).not.toBe(uidB);
    for (const uid of [uidA, uidB, victimHostUid]) {
      expect(uid).not.toBe('0');
      expect(uid).not.toBe(String(process.getuid!()));
    }
  });

  it('4. processes a job moves to a new session (setsid) do not outlive it: finished, canceled or timed out', async () => {
    const [m1, m2, m3, m4] = [mark('1141'), mark('1151'), mark('1145'), mark('1146')];
    const [j1, j2, j3, j4] = await Promise.all([
      submit(s, a.token, { name: 'setsid-f', command: ['setsid', '-f', 'sleep', m1] }),
      submit(s, a.token, { name: 'setsid-bg', command: ['sh', '-c', 'setsid sleep "$M" &'], env: { M: m2 } }),
      submit(s, a.token, { name: 'setsid-cancel', command: ['sh', '-c', 'setsid -f sleep "$M"; exec sleep "$M"'], env: { M: m3 } }),
      submit(s, a.token, { name: 'setsid-timeout', command: ['sh', '-c', 'setsid -f sleep "$M"; exec sleep "$M"'], env: { M: m4 }, timeout_seconds: 1 }),
    ]);
    // The one to cancel runs, escaped child and all.
    await startedRunning(s, a.token, j3.id);
    await waitFor(() => hostPidsWithMarker(`sleep ${m3}`).length === 2, 10_000);
    await cancel(s, a.token, j3.id);

    const done = await Promise.all([j1, j2, j3, j4].map((j) => waitTerminal(s, a.token, j.id)));
    expect(done.map((j) => j.status)).toEqual(['success', 'success', 'canceled', 'failed']);
    expect(done[3]!.error).toMatch(/timed out/);

    const left = await Promise.all([m1, m2, m3, m4].map((m) => survivorsAfter(`sleep ${m}`, 5000)));
    expect(left, 'processes that outlived their job').toEqual([[], [], [], []]);
  });

  it.skipIf(!CGROUP2)(`4b. a job's processes, escaped ones too, are in its cgroup <cgroup2>/jobrunner/<id>-<attempt> while it runs; after it ends, none is${CGROUP2 ? '' : ' (skipped: this host has no cgroup v2 mount)'}`, async () => {
    const [m1, m2] = [mark('1147'), mark('1148')];
    const quick = await runJob(s, a.token, { name: 'cg-quick', command: ['setsid', '-f', 'sleep', m1] });
    expect(quick.job.status).toBe('success');
    const job = await submit(s, a.token, { name: 'cg-held', command: ['sh', '-c', 'setsid -f sleep "$M"; exec sleep "$M"'], env: { M: m2 } });
    await startedRunning(s, a.token, job.id);
    const pids = await waitFor(() => {
      const p = hostPidsWithMarker(`sleep ${m2}`);
      return p.length === 2 && p;
    }, 10_000);
    try {
      expect(jobCgroups(job.id).length, `cgroups of job ${job.id} under ${CGROUP2}/jobrunner`).toBeGreaterThan(0);
      expect(cgroupProcs(job.id)).toEqual(expect.arrayContaining(pids));
    } finally {
      await cancel(s, a.token, job.id);
    }
    expect((await waitTerminal(s, a.token, job.id)).status).toBe('canceled');
    for (const id of [quick.job.id, job.id]) {
      await expect.poll(() => cgroupProcs(id), { timeout: 5000 }).toEqual([]);
    }
  });

  describe.concurrent('resource limits (JobCreate.limits) hold for the whole job, across its processes', () => {
    it('5. process limit: a job asking for pids 50 never has more than 50 processes; error says "process limit", even when it exits 0', async ({ expect }) => {
      const [m1, m2] = [mark('30'), mark('31')];
      // The fork loop of the issue: sh gives up at the first fork that fails.
      const loop = await submit(s, a.token, {
        name: 'fork-loop', command: ['sh', '-c', 'for i in $(seq 200); do sleep "$M" & done; wait'], env: { M: m1 },
        limits: { pids: 50 }, timeout_seconds: 60,
      });
      // The same, but the job waits (without forking: reading a fifo) until the test has counted, then exits 0.
      const dir = mkdtempSync(join(s.db.dataDir, 'workspace', 'pids-'));
      chmodSync(dir, 0o755);
      const fifo = join(dir, 'go');
      expect(spawnSync('mkfifo', ['-m', '666', fifo]).status).toBe(0);
      const held = await submit(s, a.token, {
        name: 'fork-then-exit-0',
        command: ['sh', '-c', '(for i in $(seq 200); do sleep "$M" & done; wait) 2>/dev/null; read x < go; exit 0'],
        env: { M: m2 }, working_dir: dir, limits: { pids: 50 }, timeout_seconds: 60,
      });

      let maxLoop = 0;
      let maxLoopCg = 0;
      let loopJob: JobRead;
      for (;;) {
        maxLoop = Math.max(maxLoop, hostPidsWithMarker(`sleep ${m1}`).length);
        if (CGROUP2) maxLoopCg = Math.max(maxLoopCg, cgroupProcs(loop.id).length);
        loopJob = await getJob(s, a.token, loop.id);
        if (['success', 'failed', 'canceled'].includes(loopJob.status)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(maxLoop, 'sleeps of the fork loop seen at once').toBeLessThanOrEqual(49);
      expect(maxLoopCg, 'processes in the fork loop\'s cgroup').toBeLessThanOrEqual(50);
      expect(loopJob.error ?? `no error (${loopJob.status}, exit ${loopJob.exit_code})`).toMatch(/process limit/);

      // The job opens the fifo to read once its fork loop is over: our non-blocking open
      // succeeds only then (ENXIO before). It then waits for our line while we count.
      const release = await waitFor(() => {
        try {
          return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        } catch {
          return undefined;
        }
      }, 20_000);
      try {
        const sleeps = hostPidsWithMarker(`sleep ${m2}`).length;
        expect(sleeps).toBeGreaterThan(0);
        expect(sleeps + 1, 'processes of the held job (its sleeps and sh)').toBeLessThanOrEqual(50);
        if (CGROUP2) expect(cgroupProcs(held.id).length).toBeLessThanOrEqual(50);
      } finally {
        writeFileSync(release, 'go\n');
        closeSync(release);
      }
      const done = await waitTerminal(s, a.token, held.id);
      expect(done).toMatchObject({ status: 'success', exit_code: 0 });
      expect(done.error ?? 'no error').toMatch(/process limit/);
    }, 90_000);

    it('6. memory limit across processes: four 40 MB processes under memory_mb 64 end the job "failed", error "memory limit" with 64', async ({ expect }) => {
      // `tail` of a stream without newlines keeps all of it; each holds ~40 MB until its input ends (after the sleep).
      const { job, logs } = await runJob(s, a.token, {
        name: 'memory',
        command: ['sh', '-c', 'for i in 1 2 3 4; do (head -c 40m /dev/zero; sleep 4) | tail > /dev/null & done; wait'],
        limits: { memory_mb: 64 }, timeout_seconds: 60,
      }, 70_000);
      expect(job.status, logs.stderr).toBe('failed');
      expect(job.error ?? `no error (exit ${job.exit_code})`).toMatch(/memory limit/);
      expect(job.error).toMatch(/\b64\b/);
    }, 80_000);

    it('7. cpu limit across processes: cpu_seconds 1 stops two busy loops, and a chain of short-lived busy processes, within seconds', async ({ expect }) => {
      const [loops, chain] = await Promise.all([
        runJob(s, a.token, {
          name: 'cpu-loops', command: ['sh', '-c', 'while :; do :; done & while :; do :; done'],
          limits: { cpu_seconds: 1 }, timeout_seconds: 30,
        }, 40_000),
        // Each child burns well under a second of CPU: a per-process limit never trips.
        runJob(s, a.token, {
          name: 'cpu-chain', command: ['sh', '-c', 'while :; do sh -c \'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done\'; done'],
          limits: { cpu_seconds: 1 }, timeout_seconds: 30,
        }, 40_000),
      ]);
      for (const { job } of [loops, chain]) {
        expect(job.status).toBe('failed');
        expect(job.error ?? `no error (exit ${job.exit_code})`).toMatch(/cpu limit/);
        expect(Date.parse(job.finished_at!) - Date.parse(job.started_at!)).toBeLessThan(15_000);
      }
    }, 60_000);

    it('8. open files limit: with open_files 64 a job cannot open 100 files', async ({ expect }) => {
      const { job, logs } = await runJob(s, a.token, {
        name: 'open-files',
        // bash picks a free descriptor >= 10 for each {fd}> redirection.
        command: ['bash', '-c', 'for i in $(seq 100); do exec {fd}>"f$i" || { echo "failed at $i"; exit 3; }; echo "opened $i"; done; echo "opened all"'],
        limits: { open_files: 64 },
      });
      expect(logs.stdout).not.toContain('opened all');
      const opened = lines(logs.stdout).filter((l) => l.startsWith('opened ')).length;
      expect(opened).toBeLessThan(64);
      expect(job.status).toBe('failed');
      expect(job.exit_code).not.toBe(0);
    });

    it('9. file size limit: with file_size_mb 1, writing 5 MB ends the job "failed", error "file size limit", the file at most 1 MB', async ({ expect }) => {
      const { job } = await runJob(s, a.token, {
        name: 'file-size', command: ['sh', '-c', 'head -c 5m /dev/zero > big'], limits: { file_size_mb: 1 },
      });
      expect(job.status).toBe('failed');
      expect(job.error ?? `no error (exit ${job.exit_code})`).toMatch(/file size limit/);
      const big = join(job.working_dir, 'big');
      if (existsSync(big)) expect(statSync(big).size).toBeLessThanOrEqual(1024 * 1024);
    });
  });

  it("10. a job gets no descriptor of the server's: not by inheritance, not through /proc/<server>/fd; it has only 0, 1, 2", async () => {
    // A writable file the (in-process) server holds open at a descriptor >= 10. Node opens
    // every descriptor close-on-exec (and marks those it inherits so at start-up), so the
    // inherited route is shut before isolation too; /proc/<server>/fd/<n> is not.
    const held: number[] = [];
    let fd = -1;
    try {
      while (fd < 10) held.push((fd = openSync(fdFile, 'w')));
      const { job, logs } = await runJob(s, a.token, {
        name: 'fd',
        command: ['bash', '-c', 'echo pwned >&"$FD"; echo pwned > "/proc/$SP/fd/$FD"; ls /proc/self/fd'],
        env: { FD: String(fd), SP: String(process.pid) },
      });
      expect(readFileSync(fdFile, 'utf8'), "the server's file was written").toBe('');
      // ls lists its own descriptors: 0, 1, 2 and the one it reads the directory with.
      const open = lines(logs.stdout).map(Number);
      expect(open).not.toContain(fd);
      expect(open.filter((n) => n > 2).length, `descriptors: ${open.join(' ')}`).toBeLessThanOrEqual(1);
      expect(job.status).toBe('success');
    } finally {
      for (const h of held) closeSync(h);
    }
  });

  it('11. a working_dir swapped for a symlink to /etc while the job waits is not where the job runs', async () => {
    const c = await s.user('operator');
    const lim = await s.request('POST', `/admin/limits/users/${c.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 1 } });
    expect(lim.status, lim.text).toBe(200);
    const proj = join(s.db.dataDir, 'workspace', `proj-${randomBytes(4).toString('hex')}`);
    mkdirSync(proj);
    const m = mark('1111');
    const first = await submit(s, c.token, { name: 'first', command: ['sleep', m] });
    await startedRunning(s, c.token, first.id);
    const second = await submit(s, c.token, { name: 'second', command: ['sh', '-c', 'pwd; ls'], working_dir: proj });
    expect((await getJob(s, c.token, second.id)).status).toBe('pending');

    rmSync(proj, { recursive: true });
    symlinkSync('/etc', proj);
    await cancel(s, c.token, first.id);
    const job = await waitTerminal(s, c.token, second.id);
    const logs = await getLogs(s, c.token, second.id);
    // Refusing to start is fine (ideally with an error that names the working_dir); running in /etc is not.
    const out = lines(logs.stdout);
    expect(out.includes('/etc') || out.includes('passwd'), `the job ran in /etc (${job.status}, error ${JSON.stringify(job.error)})`).toBe(false);
  });

  it('12. a job cannot gain privileges (NoNewPrivs: 1) and dumps no core (ulimit -c is 0)', async () => {
    const { job, logs } = await runJob(s, a.token, { name: 'hygiene', command: ['sh', '-c', 'grep NoNewPrivs /proc/self/status; ulimit -c'] });
    expect(job.status).toBe('success');
    expect(logs.stdout).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(lines(logs.stdout).at(-1)).toBe('0');
  });

  it("13. jobs still work: with DATA_DIR under /tmp a job reads its run directory by absolute path, and gets a /tmp of its own", async () => {
    const dataDir = join(yDir, 'data');
    expect(dataDir.startsWith('/tmp/')).toBe(true);
    const hostMarker = `jobrunner-host-marker-${randomBytes(4).toString('hex')}`;
    const written = `jobrunner-job-wrote-${randomBytes(4).toString('hex')}`;
    writeFileSync(join('/tmp', hostMarker), 'host');
    try {
      const { job, logs } = await runJob(y, yToken, {
        name: 'run-dir',
        command: ['sh', '-c', 'pwd; echo hi > f; cat "$(pwd)/f"; ls -d "$(pwd)"; echo tmp > "/tmp/$W" && cat "/tmp/$W"; ls -a /tmp'],
        env: { W: written },
      });
      expect(job.status, `error ${job.error}; ${logs.stderr}`).toBe('success');
      expect(job.working_dir).toBe(join(dataDir, 'runs', job.id));
      const out = lines(logs.stdout);
      expect(out.slice(0, 4)).toEqual([job.working_dir, 'hi', job.working_dir, 'tmp']);
      expect(out).not.toContain(hostMarker);
      expect(existsSync(join('/tmp', written)), "the job's /tmp file appeared in the host's /tmp").toBe(false);
    } finally {
      rmSync(join('/tmp', hostMarker), { force: true });
      rmSync(join('/tmp', written), { force: true });
    }
  });

  it('14. after kill -9 of the server, none of its jobs\' processes survives', async () => {
    const m = mark('1161');
    const job = await submit(x, xToken, { name: 'orphan', command: ['sleep', m] });
    await startedRunning(x, xToken, job.id);
    await waitFor(() => hostPidsWithMarker(`sleep ${m}`).length === 1, 10_000);
    x.child.kill('SIGKILL');
    expect((await x.exited).signal).toBe('SIGKILL');
    expect(await survivorsAfter(`sleep ${m}`, 5000)).toEqual([]);
  });
});

describe('a working_dir holding the data directory', () => {
  it('is refused at submit (400): the job would see DATA_DIR whole through it', async () => {
    // An administrator allowed a broad root (the OS temporary directory) that also holds DATA_DIR.
    const broad = await startServer('sqlite', { JOBS_ALLOWED_ROOTS: tmpdir() });
    try {
      const dataDir = broad.env.DATA_DIR!;
      const op = await broad.user('operator');
      for (const dir of [dirname(dataDir), dataDir]) {
        const res = await broad.request('POST', '/jobs', {
          token: op.token,
          body: { name: 'over-data', command: ['cat', join(dataDir, 'jobrunner.db')], working_dir: dir },
        });
        expect(res.status, `${dir}: ${res.text}`).toBe(400);
        expect(res.body.detail).toMatch(/holds the service's data directory/);
      }
      // A directory beside it is fine.
      const beside = mkdtempSync(join(tmpdir(), 'jobrunner-beside-'));
      try {
        const { job } = await runJob(broad, op.token, { name: 'beside', command: ['pwd'], working_dir: beside });
        expect(job.status, job.error ?? '').toBe('success');
      } finally {
        rmSync(beside, { recursive: true, force: true });
      }
    } finally {
      await broad.stop();
    }
  });
});

describe('the Node fallback helper (SPAWNER=node)', () => {
  it('refuses to run jobs while isolation is on: the job ends "failed" with an error naming JOB_ISOLATION=off, and did not run', async () => {
    const s = await startServer('sqlite', { SPAWNER: 'node' });
    try {
      const { job } = await runJob(s, s.adminToken, { name: 'node-spawner', command: ['sh', '-c', 'echo ran > ran'] });
      expect(job.status).toBe('failed');
      expect(job.error).toContain('JOB_ISOLATION=off');
      expect(existsSync(join(job.working_dir, 'ran'))).toBe(false);
    } finally {
      await s.stop();
    }
  });

  it('runs jobs with JOB_ISOLATION=off', async () => {
    const s = await startServer('sqlite', { SPAWNER: 'node', JOB_ISOLATION: 'off' });
    try {
      const { job, logs } = await runJob(s, s.adminToken, { name: 'node-spawner-off', command: ['sh', '-c', 'echo ran'] });
      expect(job.status).toBe('success');
      expect(logs.stdout).toBe('ran\n');
    } finally {
      await s.stop();
    }
  });
});
