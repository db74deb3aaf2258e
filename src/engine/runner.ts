// Runs one job's child process: spawn, stream its output to a sink, enforce
// timeout/cancel, and make sure nothing of its process group outlives it.
// Knows nothing about databases, GraphQL or HTTP.

import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { directLauncher, type LaunchedProcess, type Launcher, type LaunchIsolation, type LimitHit, type OutputStream } from './launcher.js';

export type Stream = 'stdout' | 'stderr';
export interface OutputChunk { stream: Stream; data: string }
export interface RunSpec {
  argv: string[];
  cwd: string;
  /** Create cwd first (a job's own run directory). */
  makeCwd?: boolean;
  env: Record<string, string>;
  timeoutSeconds?: number | null;
  maxLogBytes: number;
  killGraceMs?: number;
  /** Who forks the process (default: this process). */
  launcher?: Launcher;
  /** Run it isolated, within these limits (the launcher must be the native spawner's). */
  isolation?: LaunchIsolation;
}
export interface OutputSink { write(chunks: OutputChunk[]): Promise<void> }
export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  outcome: 'success' | 'failed' | 'canceled';
  error: string | null;
  stdoutBytes: number; stderrBytes: number;
  stdoutTruncated: boolean; stderrTruncated: boolean;
  /** Bytes read past the cap and discarded (metrics). */
  stdoutDropped: number; stderrDropped: number;
}
export interface RunHandle {
  readonly pid: number | undefined;
  /** The pid once the process runs, or undefined when it could not start. */
  readonly started: Promise<number | undefined>;
  readonly done: Promise<RunResult>;
  /** Stops it: SIGTERM, then SIGKILL after `graceMs` (default: the spec's killGraceMs; 0 kills at once). */
  cancel(reason?: string, graceMs?: number): void;
}

const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// Sizes of buffered text are measured in UTF-16 code units (string length).
const CHUNK_MAX = 64 * 1024;
const PAUSE_AT = 1024 * 1024;
// Orphaned group members are reaped by init, which may take a while (some
// inits reap on a timer); past this we stop waiting for zombies.
const GROUP_GONE_MAX_MS = 10_000;
// A process that escaped the group (setsid) may still hold our pipes open.
const PIPE_LINGER_MS = 2_000;

/**
 * Minimal environment: the server's own variables (secrets!) never reach a
 * job. An isolated job's home is its private /tmp: the server's is not its own.
 */
export function childEnv(jobEnv: Record<string, string>, isolated = false): Record<string, string> {
  return { PATH: SAFE_PATH, HOME: isolated ? '/tmp' : process.env.HOME || '/', LANG: 'C.UTF-8', ...jobEnv };
}

// A shell reports a child killed by a signal as 128 + its number.
const KILLED_BY_SIGXFSZ = 128 + constants.signals.SIGXFSZ;

/**
 * Why a job that ran into a limit ended, naming the limit and its value; null
 * when it did not. The cgroup counts memory, process and CPU hits; a file
 * over the size limit kills its writer with SIGXFSZ, seen as the job's own
 * signal or, when a shell ran the writer, as the shell's exit code.
 */
function limitError(hit: LimitHit | null, code: number | null, signal: NodeJS.Signals | null, iso: LaunchIsolation | undefined): string | null {
  const l = iso?.limits;
  if (hit === 'lease') return 'worker lost: its lease lapsed, so the spawner helper killed the job';
  if (hit === 'memory') return `memory limit reached (${l?.memoryMb} MB)`;
  if (hit === 'cpu' || signal === 'SIGXCPU') return `cpu limit reached (${l?.cpuSeconds} s of CPU time)`;
  if (hit === 'pids') return `process limit reached (${l?.pids} processes): some could not be started`;
  if (l?.fileSizeMb && (signal === 'SIGXFSZ' || code === KILLED_BY_SIGXFSZ)) return `file size limit reached (${l.fileSizeMb} MB per file)`;
  return null;
}

/**
 * Signals every process in the group. Returns false when the group no longer
 * exists (ESRCH), true otherwise (EPERM means it exists but is not ours to signal).
 */
export function killProcessGroup(pgid: number, signal: NodeJS.Signals): boolean {
  // kill(0) would hit our own group and kill(-1) every process we may signal.
  if (!Number.isInteger(pgid) || pgid <= 1) throw new RangeError(`refusing to signal process group ${pgid}`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code === 'EPERM') return true;
    throw err;
  }
}

/**
 * A spawn failure a person can act on: the program, the error code and, when a
 * bare name was not found, the PATH searched (`spawn nosuchcmd: ENOENT (not
 * found in PATH=...)`). ECANCELED (abandoned before it started) stays `spawn ECANCELED`.
 */
export function spawnFailure(program: string, code: string, path: string | undefined, missingCwd: string | null = null): string {
  if (code === 'ECANCELED') return `spawn ${code}`;
  if (code === 'ENOENT' && missingCwd !== null) return `spawn ${program}: ENOENT (working directory ${missingCwd} does not exist)`;
  if (code === 'ENOENT' && !program.includes('/')) return `spawn ${program}: ENOENT (not found in PATH=${path ?? ''})`;
  return `spawn ${program}: ${code}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Emits whatever text fits under the per-stream byte cap, drops the rest. */
class CappedDecoder {
  private decoder = new StringDecoder('utf8');
  bytes = 0;
  dropped = 0;
  truncated = false;
  private ended = false;
  constructor(private readonly max: number) {}

  write(buf: Buffer): string {
    if (this.truncated || this.ended) {
      this.dropped += buf.length;
      return '';
    }
    const room = this.max - this.bytes;
    if (buf.length <= room) {
      this.bytes += buf.length;
      return this.decoder.write(buf);
    }
    this.truncated = true;
    this.bytes += room;
    this.dropped += buf.length - room;
    // Cut the raw bytes exactly at the cap; a character cut in half becomes U+FFFD.
    return this.decoder.write(buf.subarray(0, room)) + this.end();
  }

  end(): string {
    if (this.ended) return '';
    this.ended = true;
    return this.decoder.end();
  }
}

export function startRun(spec: RunSpec, sink: OutputSink): RunHandle {
  const killGraceMs = spec.killGraceMs ?? 5000;
  const decoders: Record<Stream, CappedDecoder> = {
    stdout: new CappedDecoder(spec.maxLogBytes),
    stderr: new CappedDecoder(spec.maxLogBytes),
  };

  let resolveDone!: (r: RunResult) => void;
  const done = new Promise<RunResult>((r) => (resolveDone = r));

  let paused = false;
  const output = new OutputBatcher(sink, () => setPaused(false));

  // ---- process ---------------------------------------------------------
  let child: LaunchedProcess;
  try {
    // Own process group (the launcher detaches it), so the whole tree can be signalled at once.
    child = (spec.launcher ?? directLauncher)(spec.argv[0]!, spec.argv.slice(1), {
      cwd: spec.cwd,
      makeCwd: spec.makeCwd,
      env: childEnv(spec.env, !!spec.isolation),
      isolation: spec.isolation,
    });
  } catch (err) {
    // Invalid arguments (empty program, NUL in env, ...) throw synchronously.
    resolveDone(result(null, null, 'failed', `spawn ${(err as NodeJS.ErrnoException).code ?? 'failed'}`));
    return { pid: undefined, started: Promise.resolve(undefined), done, cancel() {} };
  }
  const started = new Promise<number | undefined>((resolve) => {
    if (child.pid !== undefined) resolve(child.pid);
    child.once('spawn', () => resolve(child.pid));
    child.once('error', () => resolve(child.pid));
  });
  // A stop asked for before the pid was known is carried out once it is.
  child.once('spawn', () => {
    if (stopping && !exited) killProcessGroup(child.pid!, 'SIGTERM');
  });

  const pipes: Record<Stream, OutputStream> = { stdout: child.stdout!, stderr: child.stderr! };
  const open = new Set<Stream>(['stdout', 'stderr']);
  let exited: { code: number | null; signal: NodeJS.Signals | null; limit: LimitHit | null } | null = null;
  let groupGone = false;
  let finished = false;
  let stopping: { outcome: 'failed' | 'canceled'; error: string } | null = null;
  let timeoutTimer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let lingerTimer: NodeJS.Timeout | undefined;

  function setPaused(on: boolean): void {
    if (paused === on) return;
    paused = on;
    for (const s of open) {
      // Past the cap data is discarded anyway, so keep draining that pipe.
      if (on && !decoders[s].truncated) pipes[s].pause();
      else if (!on) pipes[s].resume();
    }
  }

  for (const s of ['stdout', 'stderr'] as const) {
    pipes[s].on('data', (buf: Buffer) => {
      const text = decoders[s].write(buf);
      if (!text) return;
      output.append(s, text);
      // Reads between two check phases can pile up too (a fast pipe), not only behind a slow write.
      if (output.size >= PAUSE_AT) setPaused(true);
    });
    pipes[s].on('error', () => {}); // 'close' follows; nothing else to do
    pipes[s].on('close', () => {
      const tail = decoders[s].end();
      if (tail) output.append(s, tail);
      open.delete(s);
      void maybeFinish();
    });
  }

  child.on('error', (err: NodeJS.ErrnoException) => {
    // With no pid this is a spawn failure (ENOENT, EACCES, bad cwd); we never
    // signal through the ChildProcess, so no other 'error' is expected.
    if (child.pid !== undefined || finished) return;
    finished = true;
    clearTimeout(timeoutTimer);
    clearTimeout(killTimer);
    for (const p of Object.values(pipes)) p.destroy();
    // ECANCELED: abandoned by stop() before it started. A real spawn failure wins over a stop.
    if (stopping && err.code === 'ECANCELED') resolveDone(result(null, null, stopping.outcome, stopping.error));
    else resolveDone(result(null, null, 'failed', err.code ? spawnFailure(spec.argv[0]!, err.code, childEnv(spec.env).PATH, !spec.isolation && !existsSync(spec.cwd) ? spec.cwd : null) : err.message));
  });

  child.on('exit', (code: number | null, signal: NodeJS.Signals | null, groupGone?: boolean, limit?: LimitHit | null) => {
    exited = { code, signal, limit: limit ?? null };
    clearTimeout(timeoutTimer);
    clearTimeout(killTimer);
    void reapGroup(child.pid!, groupGone === true);
  });

  async function reapGroup(pgid: number, knownGone: boolean): Promise<void> {
    // Leftover background children would keep our pipes open and outlive the job.
    const deadline = Date.now() + GROUP_GONE_MAX_MS;
    for (let delay = 5; !knownGone && killProcessGroup(pgid, 'SIGKILL') && Date.now() < deadline; delay = Math.min(delay * 2, 100)) {
      await sleep(delay);
    }
    groupGone = true;
    if (open.size > 0) lingerTimer = setTimeout(closeLingeringPipes, PIPE_LINGER_MS);
    await maybeFinish();
  }

  function closeLingeringPipes(): void {
    // While paused the pipe is held back by us, not by an escaped writer.
    if (paused) lingerTimer = setTimeout(closeLingeringPipes, PIPE_LINGER_MS);
    else for (const s of open) pipes[s].destroy();
  }

  async function maybeFinish(): Promise<void> {
    if (finished || !exited || !groupGone || open.size > 0) return;
    finished = true;
    clearTimeout(lingerTimer);
    await output.drain();
    const { code, signal, limit } = exited;
    const overLimit = limitError(limit, code, signal, spec.isolation);
    if (stopping) resolveDone(result(code, signal, stopping.outcome, stopping.error));
    // A job that could not start some processes but still succeeded stands, with a note.
    else if (overLimit) resolveDone(result(code, signal, limit === 'pids' && code === 0 ? 'success' : 'failed', overLimit));
    else if (signal) resolveDone(result(code, signal, 'failed', `killed by signal ${signal}`));
    else resolveDone(result(code, signal, code === 0 ? 'success' : 'failed', null));
  }

  const killNow = () => child.pid !== undefined && killProcessGroup(child.pid, 'SIGKILL');

  function stop(outcome: 'failed' | 'canceled', error: string, graceMs = killGraceMs): void {
    if (exited || finished) return;
    // A later stop may only hurry an earlier one (a second shutdown signal), never change its outcome.
    if (stopping) {
      if (graceMs === 0) killNow();
      return;
    }
    stopping = { outcome, error };
    clearTimeout(timeoutTimer);
    if (child.pid === undefined) child.abandon?.();
    else if (graceMs === 0) killNow();
    else killProcessGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(killNow, graceMs);
  }

  if (spec.timeoutSeconds && spec.timeoutSeconds > 0) {
    const n = spec.timeoutSeconds;
    timeoutTimer = setTimeout(() => stop('failed', `timed out after ${n}s`), n * 1000);
  }

  function result(
    exitCode: number | null, signal: NodeJS.Signals | null,
    outcome: RunResult['outcome'], error: string | null,
  ): RunResult {
    return {
      exitCode, signal, outcome, error,
      stdoutBytes: decoders.stdout.bytes, stderrBytes: decoders.stderr.bytes,
      stdoutTruncated: decoders.stdout.truncated, stderrTruncated: decoders.stderr.truncated,
      stdoutDropped: decoders.stdout.dropped, stderrDropped: decoders.stderr.dropped,
    };
  }

  return {
    get pid() { return child.pid; },
    started,
    done,
    cancel(reason?: string, graceMs?: number) { stop('canceled', reason ?? 'canceled', graceMs); },
  };
}

/**
 * A run's output on its way to the sink. No timed hold: output is written as
 * soon as the sink is idle, and batches only while a write is in flight, so
 * latency is about one write and a fast producer still gets large batches.
 * setImmediate lets every read of the current poll phase join the batch.
 */
class OutputBatcher {
  private pending: OutputChunk[] = [];
  /** Characters waiting (not yet handed to the sink). */
  size = 0;
  private writing: Promise<void> | null = null;
  private queued: NodeJS.Immediate | undefined;
  private failed = false;

  /** `written` runs after each write, failed or not: the producer may resume. */
  constructor(private readonly sink: OutputSink, private readonly written: () => void) {}

  append(stream: Stream, text: string): void {
    this.size += text.length;
    while (text.length > 0) {
      const last = this.pending.at(-1);
      let room = last && last.stream === stream ? CHUNK_MAX - last.data.length : 0;
      // Never split a surrogate pair: each chunk must be valid text on its own.
      if (room > 0 && room < text.length && isHighSurrogate(text.charCodeAt(room - 1))) room--;
      if (!last || room <= 0) {
        this.pending.push({ stream, data: '' });
        continue;
      }
      last.data += text.slice(0, room);
      text = text.slice(room);
    }
    this.schedule();
  }

  /** Resolves once everything appended so far reached the sink (or was dropped by a failing one). */
  async drain(): Promise<void> {
    while (this.writing || this.pending.length > 0) {
      if (this.writing) await this.writing;
      else this.flush();
    }
  }

  private schedule(): void {
    if (this.writing || this.pending.length === 0) return;
    this.queued ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    clearImmediate(this.queued);
    this.queued = undefined;
    if (this.writing || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.size = 0;
    this.writing = Promise.resolve()
      .then(() => this.sink.write(batch))
      .catch((err: unknown) => {
        // A broken sink must not take the run down with it; the batch is lost.
        if (!this.failed) {
          this.failed = true;
          process.stderr.write(`runner: sink.write failed, dropping output: ${String(err)}\n`);
        }
      })
      .then(() => {
        this.writing = null;
        this.written();
        this.schedule();
      });
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
