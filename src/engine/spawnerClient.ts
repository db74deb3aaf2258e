// A Launcher that asks a spawner helper to start job processes and carries
// their output back. The helper is native (native/spawner.c, built at
// install) or, where that was not built, Node (spawnerProcess.ts); both speak
// the protocol described in spawner.c: commands on the helper's stdin,
// events (and every job's output) on its stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants as fsConstants, readdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import { describeIsolation, type HelperIsolation, type IsolationReport } from './isolation.js';
import type { LaunchedProcess, Launcher, LaunchIsolation, OutputStream } from './launcher.js';
import { killProcessGroup } from './runner.js';

export type SpawnerKind = 'auto' | 'native' | 'node';

export interface Spawner {
  /** Which helper runs: 'native' or 'node'. */
  readonly kind: 'native' | 'node';
  /** What isolation its jobs get (as the helper found the host when it started); network is the caller's to fill in. */
  readonly isolation: Omit<IsolationReport, 'network'>;
  launcher: Launcher;
  /** Jobs started through it that have not both exited and closed their outputs. */
  watching(): number;
  /**
   * The worker holds its lease for `ms` more milliseconds (call it after each
   * renewal in the database). From the first call on, the helper enforces it:
   * once `ms` pass without another call it kills every job (their exit says
   * limit 'lease') and refuses to start any (ELEASE) until the next call. A
   * helper started later gets what is left of it before anything else.
   */
  renewLease(ms: number): void;
  /** The job cgroups on this host, by name (of every worker of the host; none without cgroup v2 tracking). */
  jobCgroups(): string[];
  /** Has the helper kill what is left in these cgroups and remove them once empty. */
  forgetCgroups(names: string[]): void;
  close(): Promise<void>;
}

type Control = (command: 'pause' | 'resume' | 'close') => void;

/** One output of a job: 'data' (Buffer) events, then 'close'. Pausing asks the helper to stop reading it. */
class RemoteOutput extends EventEmitter implements OutputStream {
  closed = false;
  private paused = false;
  constructor(private readonly control: Control) {
    super();
  }
  pause() {
    if (!this.paused && !this.closed) this.control('pause');
    this.paused = true;
    return this;
  }
  resume() {
    if (this.paused && !this.closed) this.control('resume');
    this.paused = false;
    return this;
  }
  destroy() {
    if (!this.closed) this.control('close');
    this.end();
    return this;
  }
  end() {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
}

class RemoteProcess extends EventEmitter implements LaunchedProcess {
  pid: number | undefined;
  /** Its cgroup, when it runs isolated. */
  cgroup: string | null = null;
  /** Its cwd and the root it must lie beneath, when it runs isolated. */
  workingDir: { cwd: string; root: string } | null = null;
  exited = false;
  readonly stdout: RemoteOutput;
  readonly stderr: RemoteOutput;
  /**
   * `forget` is called once it has exited and both outputs are closed;
   * `abandon` when it is stopped before it started.
   */
  constructor(
    id: string,
    send: (fields: string[]) => void,
    private readonly forget: () => void,
    readonly abandon: () => void,
  ) {
    super();
    const control = (stream: 'o' | 'e'): Control => (command) => {
      if (command === 'close') {
        // Both outputs at once: the helper stops reading the job altogether.
        send(['close', id]);
        this.stdout.end();
        this.stderr.end();
        this.settle();
      } else send([command, id, stream]);
    };
    this.stdout = new RemoteOutput(control('o'));
    this.stderr = new RemoteOutput(control('e'));
  }
  settle() {
    if (this.exited && this.stdout.closed && this.stderr.closed) this.forget();
  }
}

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
// dist/jobrunner-spawner, from dist/engine/ or from src/engine/ (tests run the sources).
const NATIVE = fileURLToPath(new URL(fromSource ? '../../dist/jobrunner-spawner' : '../jobrunner-spawner', import.meta.url));

function nativeBuilt(): boolean {
  try {
    accessSync(NATIVE, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [String(n), name as NodeJS.Signals]));

// The native helper's MAX_FRAME. Far above what execve() takes (E2BIG past a
// few MB of arguments and environment), and what any spawn command may hold.
const MAX_COMMAND_BYTES = 64 << 20;

/** A start failure by errno name; for an isolated job, a cwd that resolved outside its root says so. */
function startError(code: string, dir: { cwd: string; root: string } | null): Error {
  if (code === 'ELEASE') return Object.assign(new Error("spawn refused: this worker's lease lapsed"), { code });
  const outside = dir && (code === 'EXDEV' || code === 'ELOOP');
  const message = outside ? `working_dir ${dir.cwd} leads outside ${dir.root} (replaced by a symlink?): refused` : `spawn ${code}`;
  return Object.assign(new Error(message), outside ? {} : { code });
}

/** Kills every process of a cgroup (v2 cgroup.kill); it may be gone already. */
function killCgroup(dir: string) {
  try {
    writeFileSync(`${dir}/cgroup.kill`, '1');
  } catch {
    // Gone with its processes.
  }
}

/** One command frame: a 4-byte little-endian length, then NUL-terminated fields. */
function frame(fields: string[]): Buffer {
  const body = Buffer.from(fields.join('\0') + '\0', 'utf8');
  // The helper would refuse it and exit, failing every job it watches: refuse this one alone.
  if (body.length > MAX_COMMAND_BYTES) throw Object.assign(new RangeError(`arguments and environment take ${body.length} bytes`), { code: 'E2BIG' });
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32LE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Node's spawn() throws on these synchronously; a NUL would also split our frame. */
function checkNoNul(values: string[]) {
  for (const v of values) {
    if (v.includes('\0')) throw Object.assign(new TypeError('arguments, environment and cwd must not contain NUL bytes'), { code: 'ERR_INVALID_ARG_VALUE' });
  }
}

/**
 * Splits the helper's stdout into events: lines, and after a `d` line its
 * bytes, handed on as they arrive (views of the chunks read, never copied).
 */
function eventReader(onLine: (line: string) => void, onData: (id: string, stream: string, data: Buffer) => void) {
  let pending: Buffer | null = null;
  let want: { id: string; stream: string; left: number } | null = null;
  return (chunk: Buffer) => {
    // Only a partial line is ever carried over to the next chunk.
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    let at = 0;
    while (at < buf.length) {
      if (want) {
        const take = Math.min(want.left, buf.length - at);
        onData(want.id, want.stream, buf.subarray(at, at + take));
        at += take;
        want.left -= take;
        if (want.left === 0) want = null;
        continue;
      }
      const nl = buf.indexOf(10, at);
      if (nl < 0) {
        pending = buf.subarray(at);
        break;
      }
      const line = buf.toString('latin1', at, nl);
      at = nl + 1;
      if (line.charCodeAt(0) === 100 /* d */) {
        const [, id, stream, length] = line.split(' ');
        if (Number(length) > 0) want = { id: id!, stream: stream!, left: Number(length) };
      } else onLine(line);
    }
  };
}

export interface SpawnerOptions {
  /** The helper's command line instead of the built-in one (tests run helpers that fail to start). */
  command?: [string, ...string[]];
  /** Jobs run isolated: these directories hidden from them, this network, this extra group. */
  isolation?: HelperIsolation | null;
}

/** Arguments of the native helper for this isolation. */
function isolationArgs(iso: HelperIsolation): string[] {
  return [
    '--isolate',
    ...iso.hide.flatMap((dir) => ['--hide', dir]),
    ...(iso.network === 'none' ? ['--network', 'none'] : []),
    ...(iso.group !== null ? ['--group', String(iso.group)] : []),
  ];
}

/** The spawn command's isolation fields: ROOT CGROUP UID GID MEM PIDS CPU NOFILE FSIZE. */
function isolationFields(cwd: string, iso: LaunchIsolation | undefined): string[] {
  if (!iso) return [cwd, '-', '-', '-', '-', '-', '-', '-', '-'];
  const n = (v: number | null, scale = 1) => (v === null ? '-' : String(v * scale));
  const { memoryMb, pids, cpuSeconds, openFiles, fileSizeMb } = iso.limits;
  const MB = 1024 * 1024;
  return [iso.root, iso.cgroup, String(iso.uid), String(iso.gid), n(memoryMb, MB), n(pids), n(cpuSeconds), n(openFiles), n(fileSizeMb, MB)];
}

// A helper that dies soon after starting is restarted after a growing delay,
// so one that cannot run (binary gone, no processes left) does not spin.
const RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 5_000;
/** A helper that ran this long before dying is restarted at once. */
const HEALTHY_MS = 10_000;

// How long start-up waits for the first helper to say what isolation it has
// (one that cannot start or dies ends the wait at once).
const FIRST_READY_MS = 10_000;

export async function startSpawner(log: Logger, want: SpawnerKind = 'auto', options: SpawnerOptions = {}): Promise<Spawner> {
  const built = nativeBuilt();
  const kind = want === 'node' || (want === 'auto' && !built) ? 'node' : 'native';
  if (kind === 'native' && !built) throw new Error(`SPAWNER=native, but ${NATIVE} is missing: run \`npm run build\` (needs a C compiler)`);
  if (kind === 'node' && want === 'auto') log.warn('native spawner not built; starting jobs through the Node spawner (slower starts). Run `npm run build` with a C compiler installed.');
  const [helperFile, ...helperArgs] =
    options.command ??
    (kind === 'native'
      ? [NATIVE, ...(options.isolation ? isolationArgs(options.isolation) : [])]
      : [process.execPath, ...(fromSource ? ['--import', 'tsx'] : []), here.replace(/spawnerClient\.(ts|js)$/, 'spawnerProcess.$1')]);

  const running = new Map<string, RemoteProcess>();
  let nextId = 0;
  let closing = false;
  // What the first ready helper reported; every later one runs on the same host.
  let isolation: Omit<IsolationReport, 'network'> | null = null;
  let cgroupRoot: string | null = null;
  let firstAnswer!: () => void;
  const firstReport = new Promise<void>((resolve) => (firstAnswer = resolve));

  function onReady(fields: string[]) {
    const [level = 'off', features = '-', missing = '-', cgroups = '-'] = fields;
    if (isolation) return;
    isolation = describeIsolation(options.isolation ? level : 'off', !!options.isolation, kind, features, missing);
    cgroupRoot = cgroups === '-' ? null : cgroups;
    firstAnswer();
  }

  function onLine(line: string, ready: () => void) {
    const [t, id, a, b, c, d] = line.split(' ');
    if (t === 'r') {
      onReady(line.split(' ').slice(1));
      return ready();
    }
    const proc = running.get(id!);
    if (!proc) return;
    if (t === 's') {
      proc.pid = Number(a);
      proc.emit('spawn');
    } else if (t === 'c') {
      (a === 'e' ? proc.stderr : proc.stdout).end();
      proc.settle();
    } else if (t === 'e') {
      notStarted(id!, proc, startError(a!, proc.workingDir));
    } else if (t === 'x') {
      proc.exited = true;
      proc.settle();
      proc.emit('exit', a === '-' ? null : Number(a), b === '-' ? null : (signalNames.get(b!) ?? null), c === '1', d && d !== '-' ? d : null);
    }
  }

  function onData(id: string, stream: string, data: Buffer) {
    const proc = running.get(id);
    const output = stream === 'e' ? proc?.stderr : proc?.stdout;
    // After a close command its output may still be in flight: dropped, as asked.
    if (output && !output.closed) output.emit('data', data);
  }

  /** Forgets a job and ends its outputs. */
  function drop(id: string, proc: RemoteProcess) {
    running.delete(id);
    proc.stdout.end();
    proc.stderr.end();
  }

  /** Ends a job that will not start, with 'error' (after the caller's turn: it may be inside the runner's stop). */
  function notStarted(id: string, proc: RemoteProcess, error: Error) {
    drop(id, proc);
    process.nextTick(() => proc.emit('error', error));
  }

  /** The jobs a dead helper was told about: those it started end as killed (their groups too), the others as not started. */
  function failSent(): number {
    let n = 0;
    for (const [id, proc] of running) {
      if (unsent.has(id)) continue;
      n++;
      // Made before the job started, and maybe not yet removed after it ended: the next helper removes it once empty (this process does not know every hierarchy it is in).
      if (proc.cgroup) leftoverCgroups.push(proc.cgroup);
      if (!proc.pid) {
        notStarted(id, proc, new Error('the spawner helper exited before starting the job'));
        continue;
      }
      drop(id, proc);
      if (proc.exited) continue;
      // Its init dies with the helper and takes the namespace along; the cgroup makes sure.
      killProcessGroup(proc.pid, 'SIGKILL');
      if (proc.cgroup && cgroupRoot) killCgroup(`${cgroupRoot}/${proc.cgroup}`);
      proc.emit('exit', null, 'SIGKILL');
    }
    return n;
  }

  // Null until a helper is ready: meanwhile commands wait in `queued`, and
  // the jobs they would start (`unsent`) wait for the next helper.
  let helper: ChildProcess | null = null;
  let newest: ChildProcess | null = null; // ready or not
  let queued: { id: string; command: Buffer }[] = [];
  const unsent = new Set<string>();
  // Cgroups of jobs a dead helper started: the next helper is told to remove them.
  let leftoverCgroups: string[] = [];
  let quickDeaths = 0;
  let restartTimer: NodeJS.Timeout | null = null;
  const write = (id: string, command: Buffer) => (helper ? helper.stdin!.write(command) : queued.push({ id, command }));
  // The lease's end on our monotonic clock, once renewed: each new helper is told what is left of it.
  let leaseDeadline: number | null = null;
  const leaseCommand = () => frame(['lease', String(Math.max(0, Math.ceil(leaseDeadline! - performance.now())))]);

  function abandon(id: string) {
    const proc = running.get(id);
    if (!proc || !unsent.delete(id)) return;
    queued = queued.filter((q) => q.id !== id);
    notStarted(id, proc, Object.assign(new Error('spawn ECANCELED'), { code: 'ECANCELED' }));
  }

  function startHelper() {
    restartTimer = null;
    const startedAt = Date.now();
    let child: ChildProcess;
    try {
      // Its own environment holds nothing of ours (no secrets); jobs get theirs explicitly.
      // Our pid: a helper whose parent is not (or no longer) us runs nothing.
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', JOBRUNNER_WORKER_PID: String(process.pid) };
      child = spawn(helperFile, helperArgs, { env, stdio: ['pipe', 'pipe', 'inherit'] });
    } catch (err) {
      return helperDown(startedAt, err as Error);
    }
    newest = child;
    let down = false;
    const onDown = (err: Error | null, code: number | null = null, signal: NodeJS.Signals | null = null) => {
      if (down) return;
      down = true;
      if (helper === child) helper = null;
      helperDown(startedAt, err, code, signal);
    };
    // Node reports a failed start with 'error' and no 'exit'.
    child.on('error', (err) => onDown(err));
    child.on('exit', (code, signal) => onDown(null, code, signal));
    if (!child.stdin || !child.stdout) return; // no pipes (EMFILE): 'error' follows
    child.stdin.on('error', () => {}); // a dead helper is handled above
    // Commands go to a helper once it says it is ready: one that cannot run
    // (no pipes, a missing library, ...) never takes a job with it.
    const ready = () => {
      if (down) return;
      helper = child;
      // Armed before any spawn: a lease that lapsed meanwhile refuses them.
      if (leaseDeadline !== null) child.stdin!.write(leaseCommand());
      for (const name of leftoverCgroups) child.stdin!.write(frame(['forget', name]));
      leftoverCgroups = [];
      for (const q of queued) child.stdin!.write(q.command);
      queued = [];
      unsent.clear();
    };
    child.stdout.on('data', eventReader((line) => onLine(line, ready), onData));
  }

  function helperDown(startedAt: number, err: Error | null, code: number | null = null, signal: NodeJS.Signals | null = null) {
    firstAnswer();
    if (closing) return;
    quickDeaths = Date.now() - startedAt >= HEALTHY_MS ? 0 : quickDeaths + 1;
    const delay = quickDeaths <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** (quickDeaths - 2));
    const failedJobs = failSent();
    log.error(`spawner ${err ? 'could not start' : 'exited'}; starting another${delay ? ` in ${delay} ms` : ''}`, {
      ...(err ? { error: err.message } : { code, signal }),
      failedJobs,
      waitingJobs: unsent.size,
    });
    if (delay) restartTimer = setTimeout(startHelper, delay);
    else startHelper();
  }

  startHelper();
  // A helper that cannot start at all is retried in the background; start-up goes on without its report.
  await Promise.race([firstReport, new Promise((resolve) => setTimeout(resolve, FIRST_READY_MS).unref())]);
  const report = () => isolation ?? describeIsolation('none', !!options.isolation, kind, '-', 'spawner-helper');
  if (report().level === 'none') {
    log.error(`jobs cannot run isolated on this host: ${report().missing.join('; ')}. They fail to start until an administrator sets JOB_ISOLATION=off (jobs then run as the server's own user, unisolated).`);
  } else if (report().missing.length) {
    log.warn(`job isolation is ${report().level}: ${report().missing.join('; ')}`);
  }

  const launcher: Launcher = (file, args, { cwd, env, makeCwd, isolation: iso }) => {
    const envEntries = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    checkNoNul([file, cwd, ...args, ...envEntries]);
    const id = (nextId++).toString(36);
    // Throws (E2BIG) before anything is kept.
    const command = frame(['spawn', id, file, cwd, makeCwd ? '1' : '0', ...isolationFields(cwd, iso), String(args.length), ...args, ...envEntries]);
    const proc = new RemoteProcess(id, (fields) => write(id, frame(fields)), () => running.delete(id), () => abandon(id));
    running.set(id, proc);
    if (iso && report().level === 'none') {
      notStarted(id, proc, new Error(`job isolation is not available on this host (${report().missing.join('; ')}); an administrator can set JOB_ISOLATION=off to run jobs without it`));
      return proc;
    }
    proc.cgroup = iso?.cgroup ?? null;
    proc.workingDir = iso ? { cwd, root: iso.root } : null;
    if (!helper) unsent.add(id);
    write(id, command);
    return proc;
  };

  return {
    kind,
    get isolation() {
      return report();
    },
    launcher,
    watching: () => running.size,
    renewLease(ms: number) {
      if (!Number.isFinite(ms)) throw new RangeError(`lease of ${ms} ms`);
      if (closing) return;
      leaseDeadline = performance.now() + ms;
      helper?.stdin!.write(leaseCommand());
    },
    jobCgroups() {
      if (!cgroupRoot) return [];
      try {
        return readdirSync(cgroupRoot, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
      } catch {
        return [];
      }
    },
    forgetCgroups(names) {
      for (const name of names) write(`forget ${name}`, frame(['forget', name]));
    },
    async close() {
      closing = true;
      if (restartTimer) clearTimeout(restartTimer);
      newest?.kill('SIGTERM');
      // Jobs still waiting for a helper will not get one.
      for (const id of [...unsent]) abandon(id);
    },
  };
}
