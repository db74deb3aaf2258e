// Self-fencing in the spawner helpers (issue #14): the worker renews its
// lease with the helper, and a helper whose lease lapsed (the worker paused,
// or cut off from the database) kills its jobs and starts no more; a helper
// never starts a job whose worker is gone, even one read from its pipe after
// it was itself stopped. Both helpers, real processes throughout; a job's
// processes are found on the host by a marker in their command line.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { LaunchedProcess, LaunchOptions } from '../../src/engine/launcher.js';
import { startSpawner, type Spawner } from '../../src/engine/spawnerClient.js';
import { childProcesses, REPO_ROOT } from '../helpers/jobs.js';
import { hostPidsWithMarker, killMarked, marker, survivorsAfter } from '../helpers/isolation.js';
import { waitFor } from '../helpers/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The promise's value, or a failure naming what did not happen within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A job that holds its group with two marked sleeps (GNU sleep takes the fraction). */
const holdArgs = (mark: string) => ['-c', `sleep ${mark} & sleep ${mark}`];

/** Jobs run isolated as nobody, in their own cgroup. */
const isolatedOptions = (): LaunchOptions => ({
  cwd: '/',
  env: { PATH: '/usr/bin:/bin' },
  isolation: {
    root: '/',
    cgroup: `lease-test-${randomBytes(6).toString('hex')}`,
    uid: 65534,
    gid: 65534,
    limits: { memoryMb: null, pids: null, cpuSeconds: null, openFiles: null, fileSizeMb: null },
  },
});
const plainOptions = (): LaunchOptions => ({ cwd: '/tmp', env: { PATH: '/usr/bin:/bin' } });

type Exit = [code: number | null, signal: NodeJS.Signals | null, groupGone: boolean | undefined, limit: string | null | undefined];
const exitOf = (p: LaunchedProcess) => once(p, 'exit') as Promise<Exit>;
const started = (p: LaunchedProcess) =>
  new Promise<number>((resolve, reject) => {
    p.once('spawn', () => resolve(p.pid!));
    p.once('error', reject);
  });
const startError = (p: LaunchedProcess) =>
  new Promise<NodeJS.ErrnoException>((resolve, reject) => {
    p.once('error', resolve);
    p.once('spawn', () => reject(new Error(`started (pid ${p.pid}) though it should have been refused`)));
  });

/** Whether a process has ended (gone, or a zombie nobody reaped yet). */
function ended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return true;
  }
}

const marks = new Set<string>();
const mark = () => {
  const m = marker(String(300 + Math.floor(Math.random() * 600)));
  marks.add(m);
  return m;
};
afterEach(() => {
  killMarked(marks);
  marks.clear();
});

const variants = [
  { kind: 'native', isolated: false },
  { kind: 'native', isolated: true },
  { kind: 'node', isolated: false },
] as const;

/** This process's spawner helpers. */
const helperPids = () => childProcesses().filter((p) => /jobrunner-spawner|spawnerProcess/.test(p.cmdline)).map((p) => p.pid);

describe.each(variants)('the lease watchdog ($kind helper, isolated: $isolated)', ({ kind, isolated }) => {
  let spawner: Spawner;
  let othersHelpers: number[];
  const options = isolated ? isolatedOptions : plainOptions;
  beforeAll(async () => {
    othersHelpers = helperPids();
    spawner = await startSpawner(createLogger('error'), kind, isolated ? { isolation: { hide: [], network: 'host', group: null } } : {});
    if (isolated) expect(spawner.isolation.level).toBe('full');
  });
  afterAll(async () => {
    await spawner?.close();
  });

  it('kills a running job, with everything it started, soon after the lease was last renewed and not again; its exit says lease', async () => {
    const m = mark();
    spawner.renewLease(500);
    const job = spawner.launcher('sh', holdArgs(m), options());
    const exit = exitOf(job);
    await started(job);
    await waitFor(() => hostPidsWithMarker(m).length >= 2, 5000);
    // Renewed within the lease each time: the job runs on past the first deadline.
    for (let i = 0; i < 3; i++) {
      await sleep(250);
      spawner.renewLease(500);
    }
    const lastRenewal = performance.now();
    expect(hostPidsWithMarker(m).length).toBeGreaterThanOrEqual(2);
    const [code, signal, , limit] = await within(exit, 5000, 'the job did not end after its lease lapsed');
    const after = performance.now() - lastRenewal;
    expect({ code, signal, limit }).toEqual({ code: null, signal: 'SIGKILL', limit: 'lease' });
    expect(after).toBeGreaterThanOrEqual(450);
    expect(after).toBeLessThan(1500);
    expect(await survivorsAfter(m, 2000)).toEqual([]);
  });

  it('refuses to start a job while the lease is lapsed, starting nothing; a renewal arms it again', async () => {
    spawner.renewLease(50);
    await sleep(200);
    const m = mark();
    const refused = spawner.launcher('sh', holdArgs(m), options());
    const err = await startError(refused);
    expect(err.message).toBe("spawn refused: this worker's lease lapsed");
    expect(err.code).toBe('ELEASE');
    await sleep(300);
    expect(hostPidsWithMarker(m)).toEqual([]);

    spawner.renewLease(30_000);
    const m2 = mark();
    const runs = spawner.launcher('sh', ['-c', `sleep 0.${m2.split('.')[1]}; echo ran`], options());
    const out: Buffer[] = [];
    runs.stdout.on('data', (d) => out.push(d));
    expect(await exitOf(runs)).toEqual([0, null, true, null]);
    expect(Buffer.concat(out).toString()).toBe('ran\n');
  });

  it('arms a helper started after a renewal with what is left of the lease', async () => {
    const ours = () => helperPids().filter((pid) => !othersHelpers.includes(pid));
    const [helper] = ours();
    // Long enough for the next helper to start (the Node one loads its sources first).
    const lease = kind === 'node' ? 8000 : 2000;
    spawner.renewLease(lease);
    process.kill(helper!, 'SIGKILL');
    await waitFor(() => ours().some((pid) => pid !== helper), 5000);
    const m = mark();
    const job = spawner.launcher('sh', holdArgs(m), options());
    const exit = exitOf(job);
    await started(job);
    const [, signal, , limit] = await within(exit, lease + 5000, 'the job did not end after its lease lapsed');
    expect({ signal, limit }).toEqual({ signal: 'SIGKILL', limit: 'lease' });
    expect(await survivorsAfter(m, 2000)).toEqual([]);
  });
});

// The worker is a process of its own here, so the test can stop and kill it:
// a small script that starts a helper through the client and spawns on request.
describe.each(variants)('a helper whose worker is gone ($kind helper, isolated: $isolated)', ({ kind, isolated }) => {
  let scratch: string;
  let script: string;
  // Where a job that started at all leaves a file (isolated jobs get /tmp empty; /dev/shm they see).
  let evidence: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'spawner-lease-'));
    evidence = mkdtempSync('/dev/shm/spawner-lease-');
    chmodSync(evidence, 0o777);
    script = join(scratch, 'worker.mts');
    writeFileSync(
      script,
      `import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { startSpawner } from ${JSON.stringify(join(REPO_ROOT, 'src/engine/spawnerClient.ts'))};
import { createLogger } from ${JSON.stringify(join(REPO_ROOT, 'src/logger.ts'))};
const [kind, isolated, evidence] = process.argv.slice(2);
const spawner = await startSpawner(createLogger('error'), kind, isolated === '1' ? { isolation: { hide: [], network: 'host', group: null } } : {});
const children = readdirSync('/proc/self/task').flatMap((t) => readFileSync('/proc/self/task/' + t + '/children', 'utf8').trim().split(/\\s+/).filter(Boolean));
const helper = children.find((pid) => /jobrunner-spawner|spawnerProcess/.test(readFileSync('/proc/' + pid + '/cmdline', 'utf8')));
console.log('helper ' + helper);
const options = ${JSON.stringify(isolated ? isolatedOptions() : plainOptions())};
createInterface({ input: process.stdin }).on('line', (line) => {
  const [what, mark] = line.split(' ');
  if (what === 'hold') {
    // Another process holds our ends of the helper's stdin and stdout (socket pairs), as a child forked by the worker would.
    const sockets = readdirSync('/proc/self/fd').map(Number).filter((n) => { try { return n > 2 && readlinkSync('/proc/self/fd/' + n).startsWith('socket:'); } catch { return false; } });
    const holder = spawn('sleep', [mark], { stdio: ['ignore', 'ignore', 'ignore', ...sockets], detached: true });
    holder.on('spawn', () => console.log('holding ' + holder.pid));
    return;
  }
  if (what !== 'spawn') return;
  const job = spawner.launcher('sh', ['-c', 'echo > ' + evidence + '/' + mark + '; sleep ' + mark + ' & sleep ' + mark], options);
  job.on('spawn', () => console.log('started ' + job.pid));
  job.on('error', (e) => console.log('error ' + e.message));
  // Node writes to a pipe at once when it has room: by now the command is in the helper's stdin.
  setTimeout(() => console.log('sent'), 200);
});
`,
    );
  });
  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
    rmSync(evidence, { recursive: true, force: true });
  });

  /** The worker process, its helper's pid, and its output lines as they come. */
  async function startWorker(): Promise<{ worker: ChildProcess; helper: number; next: (prefix: string) => Promise<string> }> {
    const worker = spawn(process.execPath, ['--import', 'tsx', script, kind, isolated ? '1' : '0', evidence], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    const waiting: (() => void)[] = [];
    createInterface({ input: worker.stdout! }).on('line', (l) => {
      lines.push(l);
      waiting.splice(0).forEach((w) => w());
    });
    const next = async (prefix: string) => {
      for (;;) {
        const i = lines.findIndex((l) => l.startsWith(prefix));
        if (i >= 0) return lines.splice(i, 1)[0]!;
        if (worker.exitCode !== null || worker.signalCode !== null) throw new Error(`worker exited before "${prefix}"; it said ${JSON.stringify(lines)}`);
        await new Promise<void>((r) => waiting.push(r));
      }
    };
    const helper = Number((await next('helper ')).split(' ')[1]);
    expect(helper).toBeGreaterThan(1);
    return { worker, helper, next };
  }

  const killWorker = async (worker: ChildProcess) => {
    const exited = once(worker, 'exit');
    worker.kill('SIGKILL');
    await exited;
  };

  it.each([
    { how: 'its stdin closed with the worker', hold: false },
    { how: 'its pipes held open by another process', hold: true },
  ])('never starts a spawn that was waiting in its pipe while it was stopped and the worker died (issue scenario 5), $how; it exits', async ({ hold }) => {
    const { worker, helper, next } = await startWorker();
    const m = mark();
    try {
      if (hold) {
        worker.stdin!.write(`hold ${mark()}\n`);
        await next('holding ');
      }
      process.kill(helper, 'SIGSTOP');
      worker.stdin!.write(`spawn ${m}\n`);
      await next('sent');
      await killWorker(worker);
      process.kill(helper, 'SIGCONT');
      await waitFor(() => ended(helper), 5000);
      // Anything started would have left its file, and would still be sleeping for ~300 s.
      await sleep(500);
      expect(existsSync(join(evidence, m))).toBe(false);
      expect(hostPidsWithMarker(m)).toEqual([]);
    } finally {
      if (!ended(helper)) process.kill(helper, 'SIGKILL');
      worker.kill('SIGKILL');
    }
  });

  it('kills every job it runs when the worker dies, and exits', async () => {
    const { worker, helper, next } = await startWorker();
    const m = mark();
    try {
      worker.stdin!.write(`spawn ${m}\n`);
      await next('started ');
      await waitFor(() => hostPidsWithMarker(m).length >= 2, 5000);
      await killWorker(worker);
      await waitFor(() => ended(helper), 5000);
      expect(await survivorsAfter(m, 2000)).toEqual([]);
    } finally {
      if (!ended(helper)) process.kill(helper, 'SIGKILL');
      worker.kill('SIGKILL');
    }
  });
});
