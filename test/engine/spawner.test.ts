// The spawner helpers start job processes out of the worker's process; their
// output comes back on the helper's stdout. Both helpers (native, and the Node fallback)
// must behave the same. Real processes throughout.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/logger.js';
import { startRun, type OutputChunk } from '../../src/engine/runner.js';
import { startSpawner, type Spawner } from '../../src/engine/spawnerClient.js';
import { childProcesses, REPO_ROOT, rssMiB } from '../helpers/jobs.js';
import { waitFor } from '../helpers/server.js';

const collect = () => {
  const chunks: OutputChunk[] = [];
  return { chunks, sink: { write: async (c: OutputChunk[]) => void chunks.push(...c) }, text: (s: 'stdout' | 'stderr') => chunks.filter((c) => c.stream === s).map((c) => c.data).join('') };
};

/** This process's spawner helpers (children running jobrunner-spawner or spawnerProcess). */
const helperPids = () => childProcesses().filter((p) => /jobrunner-spawner|spawnerProcess/.test(p.cmdline)).map((p) => p.pid);

const groupAlive = (pgid: number) => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.each(['native', 'node'] as const)('spawner helper (%s)', (kind) => {
  let spawner: Spawner;
  let scratch: string;
  beforeAll(async () => {
    spawner = await startSpawner(createLogger('error'), kind);
    scratch = mkdtempSync(join(tmpdir(), 'spawner-test-'));
  });
  afterAll(async () => {
    await spawner?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const run = (argv: string[], extra: { timeoutSeconds?: number; cwd?: string; makeCwd?: boolean; env?: Record<string, string> } = {}) => {
    const out = collect();
    const handle = startRun({ argv, cwd: '/tmp', env: { GREETING: 'hi' }, maxLogBytes: 16 << 20, killGraceMs: 500, launcher: spawner.launcher, ...extra }, out.sink);
    return { handle, out };
  };

  it('is the helper asked for', () => {
    expect(spawner.kind).toBe(kind);
  });

  it('gives each of many concurrent short jobs exactly its own output and exit code', async () => {
    const runs = Array.from({ length: 60 }, (_, i) => run(['sh', '-c', `echo out-${i}; echo err-${i} >&2; exit ${i % 3}`]));
    const results = await Promise.all(runs.map((r) => r.handle.done));
    results.forEach((r, i) => {
      expect(r.exitCode).toBe(i % 3);
      expect(runs[i]!.out.text('stdout')).toBe(`out-${i}\n`);
      expect(runs[i]!.out.text('stderr')).toBe(`err-${i}\n`);
    });
    expect(spawner.watching()).toBe(0);
  });

  it('passes the job environment and nothing of ours', async () => {
    process.env.SPAWNER_SECRET = 'do-not-leak';
    const { handle, out } = run(['env']);
    await handle.done;
    expect(out.text('stdout')).toContain('GREETING=hi');
    expect(out.text('stdout')).not.toContain('do-not-leak');
  });

  it('reports a missing program as a spawn error', async () => {
    const { handle } = run(['/no/such/program']);
    const r = await handle.done;
    expect(r).toMatchObject({ outcome: 'failed', exitCode: null });
    expect(r.error).toContain('ENOENT');
    expect(await handle.started).toBeUndefined();
  });

  it('streams a large output completely', async () => {
    const { handle, out } = run(['sh', '-c', 'seq 1 200000']);
    await handle.done;
    const lines = out.text('stdout').trim().split('\n');
    expect(lines.length).toBe(200000);
    expect(lines[199999]).toBe('200000');
  });

  it('cancels and times out the whole process group', async () => {
    const a = run(['sh', '-c', 'sleep 300 & sleep 300']);
    const pgidA = (await a.handle.started)!;
    a.handle.cancel();
    expect((await a.handle.done).outcome).toBe('canceled');
    expect(groupAlive(pgidA)).toBe(false);

    const b = run(['sh', '-c', 'sleep 300 & sleep 300'], { timeoutSeconds: 1 });
    const pgidB = (await b.handle.started)!;
    const r = await b.handle.done;
    expect(r.error).toContain('timed out');
    expect(groupAlive(pgidB)).toBe(false);
  });

  it('kills background leftovers when the main process exits (native: and finishes at once)', async () => {
    const t0 = Date.now();
    const { handle, out } = run(['sh', '-c', 'sleep 300 & sleep 300 & echo hi']);
    const pgid = (await handle.started)!;
    const r = await handle.done;
    expect(r).toMatchObject({ exitCode: 0, outcome: 'success', error: null });
    expect(out.text('stdout')).toBe('hi\n');
    expect(groupAlive(pgid)).toBe(false);
    // The native helper reaps the killed leftovers itself (subreaper); otherwise init
    // does, on its own schedule (seen: every ~2 s), and the job waits for that.
    if (kind === 'native') expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('holds a fast writer back while output is not taken, without buffering it, then delivers all of it', async () => {
    // A sink that takes nothing until released: the runner pauses the stream,
    // the helper stops reading it, and the job blocks on its full pipe.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let bytes = 0;
    const sink = { write: async (c: OutputChunk[]) => { await gate; for (const x of c) bytes += Buffer.byteLength(x.data); } };
    const total = 64 << 20;
    const [helper] = helperPids() as [number];
    const rssBefore = rssMiB(helper).now;
    const handle = startRun({ argv: ['head', '-c', String(total), '/dev/zero'], cwd: '/tmp', env: {}, maxLogBytes: 256 << 20, killGraceMs: 500, launcher: spawner.launcher }, sink);
    const pid = (await handle.started)!;
    await new Promise((r) => setTimeout(r, 1000));
    expect(groupAlive(pid)).toBe(true); // still writing: blocked, not finished
    expect(rssMiB(helper).now - rssBefore).toBeLessThan(16); // not the 64 MB
    release();
    const r = await handle.done;
    expect(r).toMatchObject({ outcome: 'success', stdoutBytes: total });
    expect(bytes).toBe(total);
  });

  it('fails the jobs of a helper that died, kills their groups, and starts the next job with a new helper', async () => {
    const a = run(['sh', '-c', 'echo before; sleep 300 & sleep 300']);
    const pgid = (await a.handle.started)!;
    const [helper] = helperPids();
    process.kill(helper!, 'SIGKILL');
    const r = await a.handle.done;
    expect(r).toMatchObject({ outcome: 'failed', exitCode: null, signal: 'SIGKILL' });
    expect(groupAlive(pgid)).toBe(false);

    const b = run(['sh', '-c', 'echo after']);
    expect((await b.handle.done).outcome).toBe('success');
    expect(b.out.text('stdout')).toBe('after\n');
    expect(helperPids()).not.toContain(helper);
  });

  it('finishes a job whose escaped child (own session) still holds its output, after the linger, with the output so far', async () => {
    const marker = String(300 + Math.floor(Math.random() * 1000));
    try {
      const { handle, out } = run(['sh', '-c', `setsid sleep ${marker} & echo hi`]);
      const r = await handle.done;
      expect(r).toMatchObject({ outcome: 'success', exitCode: 0 });
      expect(out.text('stdout')).toBe('hi\n');
      expect(spawner.watching()).toBe(0); // nothing kept of it
    } finally {
      spawnSync('pkill', ['-f', `^sleep ${marker}$`]);
    }
  });

  it("creates a job's own run directory, and reports one it cannot create", async () => {
    const dir = join(scratch, 'runs', 'job-1');
    const { handle, out } = run(['pwd'], { cwd: dir, makeCwd: true });
    expect((await handle.done).outcome).toBe('success');
    expect(out.text('stdout')).toBe(`${dir}\n`);
    expect(statSync(dir).mode & 0o777).toBe(0o750);

    const file = join(scratch, 'a-file');
    writeFileSync(file, '');
    const bad = run(['pwd'], { cwd: join(file, 'sub'), makeCwd: true });
    const r = await bad.handle.done;
    expect(r).toMatchObject({ outcome: 'failed', exitCode: null });
    expect(r.error).toContain('ENOTDIR');
  });

  it("finds a bare program name on the job's PATH, not ours, and reports one it may not run", async () => {
    const bin = join(scratch, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'hello-from-path'), '#!/bin/sh\necho found on the job path\n');
    chmodSync(join(bin, 'hello-from-path'), 0o755);
    writeFileSync(join(bin, 'not-executable'), '#!/bin/sh\necho never\n');
    chmodSync(join(bin, 'not-executable'), 0o644);

    const found = run(['hello-from-path'], { env: { PATH: `${bin}:/usr/bin:/bin` } });
    expect((await found.handle.done).outcome).toBe('success');
    expect(found.out.text('stdout')).toBe('found on the job path\n');

    const missing = await run(['hello-from-path']).handle.done;
    expect(missing.error).toContain('ENOENT');

    const denied = await run(['not-executable'], { env: { PATH: bin } }).handle.done;
    expect(denied).toMatchObject({ outcome: 'failed', exitCode: null });
    expect(denied.error).toContain('EACCES');
  });

  it('runs a script without a #! line with the shell, as execvp does', async () => {
    const script = join(scratch, 'no-shebang');
    writeFileSync(script, 'echo "run by $0 with $1"\n');
    chmodSync(script, 0o755);
    const { handle, out } = run([script, 'an-argument']);
    expect((await handle.done).outcome).toBe('success');
    expect(out.text('stdout')).toBe(`run by ${script} with an-argument\n`);
  });

  it("reports death by a signal with the signal's name", async () => {
    const { handle } = run(['sh', '-c', 'kill -USR1 $$']);
    const r = await handle.done;
    expect(r).toMatchObject({ outcome: 'failed', exitCode: null, signal: 'SIGUSR1' });
    expect(r.error).toBe('killed by signal SIGUSR1');
  });

  it('gives a job default signal handling and no stdin', async () => {
    // The helper ignores SIGPIPE and blocks SIGCHLD for itself; a job must not inherit either.
    const { handle, out } = run(['sh', '-c', 'grep -E "^(SigIgn|SigBlk)" /proc/self/status; cat; echo "stdin closed"']);
    await handle.done;
    expect(out.text('stdout')).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nstdin closed\n');
  });

  it('refuses arguments and environment too large for a command, and the helper keeps working', async () => {
    const r = await run(['true'], { env: { BIG: 'x'.repeat(65 << 20) } }).handle.done;
    expect(r).toMatchObject({ outcome: 'failed', exitCode: null });
    expect(r.error).toContain('E2BIG');
    const next = run(['sh', '-c', 'echo still here']);
    expect((await next.handle.done).outcome).toBe('success');
    expect(next.out.text('stdout')).toBe('still here\n');
    expect(spawner.watching()).toBe(0);
  });

  it('refuses a NUL byte in arguments or environment before anything starts', async () => {
    const r = await run(['echo', 'a\0b']).handle.done;
    expect(r).toMatchObject({ outcome: 'failed', exitCode: null });
    expect(r.error).toContain('ERR_INVALID_ARG_VALUE');
    const e = await run(['true'], { env: { X: 'a\0b' } }).handle.done;
    expect(e.error).toContain('ERR_INVALID_ARG_VALUE');
  });
});

// A helper that cannot run. The wrapper scripts below stand in for a broken
// install (binary missing, or dying at once): faults that cannot be caused
// with the real helper without breaking it for every other test running.
describe('spawner helper that cannot start', () => {
  const NATIVE = join(REPO_ROOT, 'dist/jobrunner-spawner');
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'spawner-start-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  const capture = () => {
    const lines: { msg: string; fields: Record<string, unknown> }[] = [];
    const log: Logger = {
      debug() {},
      info() {},
      warn() {},
      error: (msg, fields = {}) => void lines.push({ msg, fields }),
      scope: () => log,
    };
    return { lines, log };
  };
  const runOn = (spawner: Spawner, argv: string[]) => {
    const out = collect();
    const handle = startRun({ argv, cwd: '/tmp', env: {}, maxLogBytes: 1 << 20, killGraceMs: 500, launcher: spawner.launcher }, out.sink);
    return { handle, out };
  };

  it('is restarted after growing delays while it dies at once; a job waiting for it runs on the first that starts', async () => {
    const starts = join(scratch, 'starts');
    const script = join(scratch, 'dies-four-times');
    writeFileSync(script, `#!/bin/sh\nn=$(cat ${starts} 2>/dev/null || echo 0)\necho $((n + 1)) > ${starts}\n[ "$n" -ge 4 ] && exec ${NATIVE}\nexit 3\n`);
    chmodSync(script, 0o755);
    const { lines, log } = capture();
    const spawner = await startSpawner(log, 'native', { command: [script] });
    try {
      const job = runOn(spawner, ['echo', 'hi']);
      expect(await job.handle.done).toMatchObject({ outcome: 'success', exitCode: 0 });
      expect(job.out.text('stdout')).toBe('hi\n');
      expect(readFileSync(starts, 'utf8').trim()).toBe('5');
      expect(lines.map((l) => l.msg)).toEqual([
        'spawner exited; starting another',
        'spawner exited; starting another in 100 ms',
        'spawner exited; starting another in 200 ms',
        'spawner exited; starting another in 400 ms',
      ]);
      // The job was never handed to a helper that was not ready. (startSpawner
      // returns once the first helper has answered, here by dying: the job came after.)
      expect(lines.map((l) => l.fields)).toEqual([0, 1, 1, 1].map((waitingJobs) => ({ code: 3, signal: null, failedJobs: 0, waitingJobs })));
    } finally {
      await spawner.close();
    }
  });

  it('does not take the service down when it is missing; waiting jobs can be canceled, and run once it is there', async () => {
    const path = join(scratch, 'installed-later');
    const { lines, log } = capture();
    const spawner = await startSpawner(log, 'native', { command: [path] });
    try {
      const canceled = runOn(spawner, ['echo', 'never']);
      // The first failure ended startSpawner's wait, before the job came: a later one counts it as waiting.
      await waitFor(() => lines.some((l) => l.fields.waitingJobs === 1));
      const failure = lines.find((l) => l.fields.waitingJobs === 1)!;
      expect(failure).toMatchObject({ msg: expect.stringMatching(/^spawner could not start; starting another/), fields: { failedJobs: 0 } });
      expect(failure.fields.error).toContain('ENOENT');
      canceled.handle.cancel('canceled by the test');
      expect(await canceled.handle.done).toMatchObject({ outcome: 'canceled', error: 'canceled by the test', exitCode: null });
      expect(canceled.out.text('stdout')).toBe('');

      const job = runOn(spawner, ['echo', 'after install']);
      writeFileSync(path, `#!/bin/sh\nexec ${NATIVE}\n`, { mode: 0o755 });
      expect(await job.handle.done).toMatchObject({ outcome: 'success', exitCode: 0 });
      expect(job.out.text('stdout')).toBe('after install\n');
      expect(spawner.watching()).toBe(0);
    } finally {
      await spawner.close();
    }
  });

  it('ends the jobs still waiting for it when the spawner is closed', async () => {
    const spawner = await startSpawner(capture().log, 'native', { command: [join(scratch, 'never-installed')] });
    const job = runOn(spawner, ['echo', 'never']);
    await spawner.close();
    expect(await job.handle.done).toMatchObject({ outcome: 'failed', exitCode: null, error: 'spawn ECANCELED' });
    expect(spawner.watching()).toBe(0);
  });
});
