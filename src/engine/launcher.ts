// How a job's process is started. The runner needs only this much of a
// ChildProcess, so the process can be forked by this process (directLauncher)
// or by the small spawner helper (spawnerClient.ts), whose fork cost does
// not grow with this process's heap.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { EventEmitter } from 'node:events';
import type { ResourceLimits } from '../config.js';

/**
 * A limit a job ran into, as the spawner helper saw it in the job's cgroup;
 * 'lease': the helper killed it because the worker's lease lapsed (no renewal
 * reached the helper in time: the worker was paused or cut off from the database).
 */
export type LimitHit = 'memory' | 'pids' | 'cpu' | 'lease';

/**
 * Emits 'spawn' once `pid` is known, 'error' when it could not start, then
 * 'exit' (code, signal, groupGone?, limit?): groupGone is true when the
 * launcher saw nothing left of the process group, so the runner need not look
 * again; limit names a resource limit the job ran into.
 */
export interface LaunchedProcess extends EventEmitter {
  readonly pid: number | undefined;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /**
   * For a process still waiting to be started (its launcher is not ready):
   * it never starts, and 'error' (ECANCELED) follows. Otherwise nothing.
   */
  abandon?(): void;
}

/** What the runner uses of an output: 'data' (Buffer), 'error' and 'close' events; flow control. */
export interface OutputStream {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error' | 'close', listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
}

export interface LaunchOptions {
  cwd: string;
  env: Record<string, string>;
  /** Create cwd first (a job's own run directory). */
  makeCwd?: boolean;
  /** Run it isolated (only the native spawner can). */
  isolation?: LaunchIsolation;
}

export interface LaunchIsolation {
  /** cwd is opened beneath this directory at start, so a symlink swapped in cannot lead elsewhere. */
  root: string;
  /** Its cgroup's name: job id and attempt. */
  cgroup: string;
  /** The identity it runs as when the helper may switch uids. */
  uid: number;
  gid: number;
  limits: ResourceLimits;
}

export type Launcher = (file: string, args: string[], options: LaunchOptions) => LaunchedProcess;

/** Own process group (detached), no stdin, piped stdout/stderr; no shell. */
export const directLauncher: Launcher = (file, args, { cwd, env, makeCwd }) => {
  if (makeCwd) mkdirSync(cwd, { recursive: true, mode: 0o750 });
  return spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }) as LaunchedProcess;
};
