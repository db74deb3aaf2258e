// Helpers for the jobs suites: submitting, waiting for states, reading the
// process table, and running the real CLI server as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { onTestFinished } from 'vitest';
import { cgroup2Mount, cgroupProcs, jobCgroups } from './cgroups.js';
import { restClient, tokenClient, waitFor, type TestServer } from './server.js';

export const JOB_READ_KEYS = [
  'id', 'name', 'command', 'working_dir', 'env', 'payload', 'status', 'exit_code', 'error',
  'owner_id', 'batch_id', 'timeout_seconds', 'created_at', 'started_at', 'finished_at',
  'attempt', 'worker_id', 'worker_host', 'cancel_requested', 'logs_removed_at', 'limits',
] as const;
/** JobRead.limits: every key always present, null = unlimited. */
export const RESOURCE_LIMIT_KEYS = ['memory_mb', 'pids', 'cpu_seconds', 'open_files', 'file_size_mb'] as const;
export type ResourceLimitsRead = Record<(typeof RESOURCE_LIMIT_KEYS)[number], number | null>;
export const STATS_KEYS = ['pending', 'running', 'success', 'failed', 'canceled', 'total'] as const;
export const TERMINAL = ['success', 'failed', 'canceled'];
export const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export interface JobRead {
  id: string;
  name: string;
  command: string[];
  working_dir: string;
  env: Record<string, string>;
  payload: Record<string, unknown> | null;
  status: 'pending' | 'running' | 'success' | 'failed' | 'canceled';
  exit_code: number | null;
  error: string | null;
  owner_id: string;
  batch_id: string | null;
  timeout_seconds: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Starts so far: 0 until first claimed. */
  attempt: number;
  worker_id: string | null;
  worker_host: string | null;
  /** A stop asked for and not yet carried out. */
  cancel_requested: boolean;
  /** When the stored output was removed (retention, log quota); null while kept. */
  logs_removed_at: string | null;
  limits: ResourceLimitsRead;
}

export interface JobLogs {
  job_id: string;
  status: string;
  exit_code: number | null;
  stdout: string;
  stderr: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
}

/** Anything with the REST request() of TestServer (the in-process server or a spawned one). */
export type Api = Pick<TestServer, 'request'>;

/** The shell line that holds a job's process group: a background and a foreground `sleep 300` (find them with jobGroup). */
export const HOLD_GROUP = 'sleep 300 & sleep 300';

export async function submit(s: Api, token: string, body: Record<string, unknown>): Promise<JobRead> {
  const res = await s.request('POST', '/jobs', { token, body: { name: 'job', ...body } });
  if (res.status !== 202) throw new Error(`submit ${JSON.stringify(body)}: ${res.status} ${res.text}`);
  return res.body as JobRead;
}

export async function getJob(s: Api, token: string, id: string): Promise<JobRead> {
  const res = await s.request('GET', `/jobs/${id}`, { token });
  if (res.status !== 200) throw new Error(`GET /jobs/${id}: ${res.status} ${res.text}`);
  return res.body as JobRead;
}

export async function getLogs(s: Api, token: string, id: string): Promise<JobLogs> {
  const res = await s.request('GET', `/jobs/${id}/logs`, { token });
  if (res.status !== 200) throw new Error(`GET /jobs/${id}/logs: ${res.status} ${res.text}`);
  return res.body as JobLogs;
}

export async function waitStatus(s: Api, token: string, id: string, statuses: string[], timeoutMs = 30_000): Promise<JobRead> {
  let last: JobRead | undefined;
  try {
    return await waitFor(async () => {
      last = await getJob(s, token, id);
      return statuses.includes(last.status) && last;
    }, timeoutMs, 50);
  } catch {
    throw new Error(`job ${id} did not reach ${statuses.join('|')} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
  }
}

export const waitTerminal = (s: Api, token: string, id: string, timeoutMs = 30_000) => waitStatus(s, token, id, TERMINAL, timeoutMs);
export const waitRunning = (s: Api, token: string, id: string, timeoutMs = 30_000) => waitStatus(s, token, id, ['running'], timeoutMs);

/** Submits and waits for the terminal state; returns the job and its logs. */
export async function runJob(s: Api, token: string, body: Record<string, unknown>, timeoutMs = 30_000): Promise<{ job: JobRead; logs: JobLogs }> {
  const submitted = await submit(s, token, body);
  const job = await waitTerminal(s, token, submitted.id, timeoutMs);
  return { job, logs: await getLogs(s, token, job.id) };
}

/**
 * The host process group of a running job: the host pid of its init (the pid
 * the service records for the job), which leads the group of all the job's
 * processes on the host. Read from the job's cgroup, which the job cannot
 * leave, never from a pid the job prints (inside its PID namespace `$$` is
 * a namespace-local pid). Waits until the cgroup holds the init.
 */
export async function jobGroup(jobId: string, timeoutMs = 15_000): Promise<number> {
  if (!cgroup2Mount()) throw new Error(`job ${jobId}: no cgroup v2 on this host, so its processes cannot be found`);
  try {
    return await waitFor(() => {
      const pids = cgroupProcs(jobId);
      const inCgroup = new Set(pids);
      // The init is the one process of the cgroup whose parent (the spawner helper) is outside it.
      const roots = pids.map(procInfo).filter((p): p is ProcInfo => p !== null && !inCgroup.has(p.ppid));
      return roots.length === 1 && roots[0]!.pgrp === roots[0]!.pid ? roots[0]!.pid : undefined;
    }, timeoutMs, 25);
  } catch {
    throw new Error(`job ${jobId}: no init leading a process group in its cgroup within ${timeoutMs} ms (cgroups: ${jobCgroups(jobId).join(', ') || 'none'}; processes: ${cgroupProcs(jobId).join(' ') || 'none'})`);
  }
}

/**
 * A fresh gate path that jobs can wait for (`[ -e GATE ]`) and a test opens
 * by creating it: in a world-searchable directory of its own under /var/tmp,
 * removed when the current test finishes. Not under DATA_DIR nor /tmp:
 * isolated jobs see neither (only their own working directory of DATA_DIR,
 * and a private /tmp), so a gate there would never open for them.
 */
export function jobGate(label = 'gate'): string {
  const dir = mkdtempSync(join('/var/tmp', `jobrunner-${label}-`));
  chmodSync(dir, 0o755);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'open');
}

interface ProcInfo { pid: number; state: string; ppid: number; pgrp: number; cmdline: string }

function procInfo(pid: number): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp ..." — comm may hold spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch { /* gone meanwhile */ }
    return { pid, state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), cmdline };
  } catch {
    return null;
  }
}

/** A process's resident set now and its peak since start or the last `resetPeakRss`, in MiB (from /proc). */
export function rssMiB(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]) / 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Starts a new peak-RSS window (Linux >= 4.0: "5" resets VmHWM to the current RSS). */
export const resetPeakRss = (pid: number) => writeFileSync(`/proc/${pid}/clear_refs`, '5');

/** The children of a process (of all its threads). */
export function childProcesses(pid = process.pid): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let children: string[] = [];
    try {
      children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch { /* thread gone meanwhile */ }
    for (const child of children) {
      const info = procInfo(Number(child));
      if (info) out.push(info);
    }
  }
  return out;
}

/** Live (non-zombie) processes whose process group is `pgid`. */
export function groupMembers(pgid: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    if (info && info.pgrp === pgid && info.state !== 'Z' && info.state !== 'X') out.push(info);
  }
  return out;
}

/** True while any non-zombie process of the group exists. */
export function processGroupAlive(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new RangeError(`bad pgid ${pgid}`);
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // The group exists for the kernel; zombies waiting for a reaper do not count.
  return groupMembers(pgid).length > 0;
}

/** Waits (bounded) for a group to disappear; returns whether it did. */
export async function groupGone(pgid: number, timeoutMs = 15_000): Promise<boolean> {
  try {
    await waitFor(() => !processGroupAlive(pgid), timeoutMs, 50);
    return true;
  } catch {
    return false;
  }
}

/** Cleanup for failed tests: never leave `sleep 300` groups behind. */
export function killGroup(pgid: number | undefined) {
  if (!pgid || pgid <= 1) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch { /* gone */ }
}

export const ms = (iso: string | null): number => {
  if (!iso) throw new Error('timestamp not set');
  return Date.parse(iso);
};

/** The largest number of jobs whose [started_at, finished_at) intervals overlap. */
export function maxOverlap(jobs: JobRead[]): number {
  const events: [number, number][] = [];
  for (const j of jobs) {
    events.push([ms(j.started_at), +1], [ms(j.finished_at), -1]);
  }
  // At equal instants the end comes first: a slot freed and refilled in the same ms is no overlap.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of events) {
    cur += d;
    max = Math.max(max, cur);
  }
  return max;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

/** The real CLI (`node --import tsx src/main.ts serve`) as a child process. */
export interface SpawnedServer extends Api {
  child: ChildProcess;
  api: string;
  output(): string;
  token(email: string, password: string): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function spawnServer(env: Record<string, string>, startTimeoutMs = 45_000): Promise<SpawnedServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return serverStarted(child, `http://127.0.0.1:${env.PORT}${env.API_PREFIX ?? '/api/v1'}`, startTimeoutMs);
}

/** A child process's combined output so far, its exit, and whether it has exited yet. */
export function watchChild(child: ChildProcess) {
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  return { output: () => output, exited, gone: () => gone };
}

/** A server process just spawned (stdout and stderr piped), once its /health answers 200; killed if it does not. */
export async function serverStarted(child: ChildProcess, api: string, startTimeoutMs: number): Promise<SpawnedServer> {
  const { output, exited, gone } = watchChild(child);
  try {
    await waitFor(async () => {
      if (gone()) throw new Error(`server exited during start-up:\n${output()}`);
      try {
        return (await fetch(`${api}/health`)).status === 200;
      } catch {
        return false;
      }
    }, startTimeoutMs, 100);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`spawned server did not become healthy: ${(err as Error).message}\n${output()}`);
  }
  return { child, api, exited, request: restClient(api), output, token: tokenClient(api) };
}
