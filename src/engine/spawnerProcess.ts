// The Node spawner helper: the fallback for hosts where the native one
// (native/spawner.c, the protocol is described there) was not built. A small
// process of its own, because Node's spawn() forks the caller and its cost
// grows with the caller's memory; so it imports nothing but Node's own
// modules and the runner's process-group kill (itself only Node's).
//
// Unlike the native helper it cannot ask to die with the worker
// (PR_SET_PDEATHSIG) nor see a hung-up stdin before reading what is left in
// it: it finds the worker gone by its parent pid before each spawn, and by
// stdin's end.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { killProcessGroup } from './runner.js';

interface Job {
  child: ChildProcess;
  outputs: Record<'o' | 'e', Readable>;
  paused: Set<'o' | 'e'>;
  /** Killed because the lease lapsed: its x event says so. */
  fenced: boolean;
}

const jobs = new Map<string, Job>();
// Jobs whose process has not exited, from the moment spawn() returns (it has execed by then).
const alive = new Set<Job>();

// The worker: our parent at start, or the pid it passed (it may have died before we looked).
const workerPid = Number(process.env.JOBRUNNER_WORKER_PID) || process.ppid;

/** The worker is gone when we are no longer its child (the process table says so at once; ppid is read anew each time). */
const workerGone = () => process.ppid !== workerPid;

/** Kills every job now (each by its process group); their x events follow as they exit. */
function killEveryJob(fenced: boolean) {
  for (const job of alive) {
    job.fenced ||= fenced;
    killProcessGroup(job.child.pid!, 'SIGKILL');
  }
}

/** The worker is gone: nothing more will be asked, and no job may run unsupervised. */
function leave(): never {
  killEveryJob(false);
  process.exit(0);
}

// The worker's lease (lease command), on the monotonic clock. A paused
// worker renews nothing: our own timer ends its jobs at the deadline. No
// lease command, no watchdog.
let leaseDeadline: number | null = null;
let leaseLapsed = false;
let watchdog: NodeJS.Timeout | undefined;

function renewLease(ms: number) {
  leaseDeadline = performance.now() + ms;
  leaseLapsed = false;
  armWatchdog();
}

// Checked after the I/O of the turn the timer fires in (setImmediate): a
// renewal that waited in the pipe while we were stopped still counts. A timer
// may fire a little early: then it is armed again for the rest.
function armWatchdog() {
  clearTimeout(watchdog);
  const left = Math.min(Math.max(0, Math.ceil(leaseDeadline! - performance.now())), 2 ** 31 - 1);
  watchdog = setTimeout(() => setImmediate(() => leaseLapsedNow() || leaseDeadline === null || armWatchdog()), left);
}

/** Whether the lease has lapsed; the moment it is first seen lapsed, every job is killed. */
function leaseLapsedNow(): boolean {
  if (leaseDeadline === null || leaseLapsed) return leaseLapsed;
  if (performance.now() < leaseDeadline) return false;
  leaseLapsed = true;
  killEveryJob(true);
  return true;
}
// While the worker is behind, every output waits (each job blocks on its full pipe).
let blocked = false;

function emit(line: string, data?: Buffer) {
  const ok = process.stdout.write(data ? Buffer.concat([Buffer.from(line, 'latin1'), data]) : line);
  if (!ok && !blocked) {
    blocked = true;
    for (const job of jobs.values()) for (const r of Object.values(job.outputs)) r.pause();
  }
}

process.stdout.on('drain', () => {
  blocked = false;
  for (const job of jobs.values()) for (const [s, r] of Object.entries(job.outputs)) if (!job.paused.has(s as 'o' | 'e')) r.resume();
});

const signalNumber = (name: NodeJS.Signals | null) => (name ? String(constants.signals[name] ?? '-') : '-');

// spawn ID FILE CWD MAKE_CWD, nine isolation fields this helper cannot honour (the client never asks it to), ARGC.
const ARGC = 13;

function start(fields: string[]) {
  const [id, file, cwd, makeCwd] = fields as [string, string, string, string];
  // The spawn may have waited in the pipe while we were stopped: its worker may be gone since.
  if (workerGone()) leave();
  if (leaseLapsedNow()) return emit(`e ${id} ELEASE\n`);
  const argc = Number(fields[ARGC]);
  const args = fields.slice(ARGC + 1, ARGC + 1 + argc);
  const env = Object.fromEntries(fields.slice(ARGC + 1 + argc).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  let child: ChildProcess;
  try {
    if (makeCwd === '1') mkdirSync(cwd, { recursive: true, mode: 0o750 });
    child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return emit(`e ${id} ${(e as NodeJS.ErrnoException).code ?? 'EIO'}\n`);
  }
  const job: Job = { child, outputs: { o: child.stdout!, e: child.stderr! }, paused: new Set(), fenced: false };
  if (child.pid) alive.add(job);
  child.once('error', (e: NodeJS.ErrnoException) => {
    alive.delete(job);
    jobs.delete(id);
    emit(`e ${id} ${e.code ?? 'EIO'}\n`);
  });
  child.once('spawn', () => {
    jobs.set(id, job);
    emit(`s ${id} ${child.pid}\n`);
    for (const [s, r] of Object.entries(job.outputs)) {
      r.on('data', (data: Buffer) => emit(`d ${id} ${s} ${data.length}\n`, data));
      r.on('end', () => emit(`c ${id} ${s}\n`));
      r.on('error', () => {});
      if (blocked) r.pause();
    }
  });
  child.once('exit', (code, signal) => {
    alive.delete(job);
    const gone = killProcessGroup(child.pid!, 'SIGKILL') ? 0 : 1;
    emit(`x ${id} ${code ?? '-'} ${signalNumber(signal)} ${gone} ${job.fenced ? 'lease' : '-'}\n`);
  });
  child.once('close', () => jobs.delete(id));
}

function command(fields: string[]) {
  const [cmd, id, stream] = fields as [string, string, 'o' | 'e' | undefined];
  if (cmd === 'spawn') return start(fields.slice(1));
  if (cmd === 'lease') return renewLease(Math.max(0, Number(id)));
  if (cmd === 'forget') return; // a dead native helper's cgroup: this helper makes none
  const job = jobs.get(id);
  if (!job) return; // already gone
  if (cmd === 'pause' && stream) {
    job.paused.add(stream);
    job.outputs[stream].pause();
  } else if (cmd === 'resume' && stream) {
    job.paused.delete(stream);
    if (!blocked) job.outputs[stream].resume();
  } else if (cmd === 'close') {
    for (const r of Object.values(job.outputs)) {
      r.removeAllListeners('data').removeAllListeners('end');
      r.destroy();
    }
  }
}

// Frames: a 4-byte little-endian length, then NUL-terminated fields.
let buffered: Buffer = Buffer.alloc(0);
process.stdin.on('data', (chunk: Buffer) => {
  buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
  while (buffered.length >= 4) {
    const len = buffered.readUInt32LE(0);
    if (buffered.length < 4 + len) break;
    const fields = buffered.toString('utf8', 4, 4 + len).split('\0');
    fields.pop(); // after the last terminator
    buffered = buffered.subarray(4 + len);
    command(fields);
  }
});
process.stdin.on('end', leave);
process.stdout.on('error', leave);
if (workerGone()) process.exit(0);
emit('r\n');
