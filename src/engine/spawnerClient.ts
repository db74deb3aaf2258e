// A Launcher that asks a spawner helper to start job processes and carries
// their output back. The helper is native (native/spawner.c, built at
// install) or, where that was not built, Node (spawnerProcess.ts); both speak
// the protocol described in spawner.c: commands on the helper's stdin,
// events (and every job's output) on its stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import type { LaunchedProcess, Launcher, OutputStream } from './launcher.js';
import { killProcessGroup } from './runner.js';

export type SpawnerKind = 'auto' | 'native' | 'node';

export interface Spawner {
  /** Which helper runs: 'native' or 'node'. */
  readonly kind: 'native' | 'node';
  launcher: Launcher;
  /** Jobs started through it that have not both exited and closed their outputs. */
  watching(): number;
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
  exited = false;
  readonly stdout: RemoteOutput;
  readonly stderr: RemoteOutput;
  /** `forget` is called once it has exited and both outputs are closed. */
  constructor(id: string, send: (fields: string[]) => void, private readonly forget: () => void) {
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

export async function startSpawner(log: Logger, want: SpawnerKind = 'auto'): Promise<Spawner> {
  const built = nativeBuilt();
  const kind = want === 'node' || (want === 'auto' && !built) ? 'node' : 'native';
  if (kind === 'native' && !built) throw new Error(`SPAWNER=native, but ${NATIVE} is missing: run \`npm run build\` (needs a C compiler)`);
  if (kind === 'node' && want === 'auto') log.warn('native spawner not built; starting jobs through the Node spawner (slower starts). Run `npm run build` with a C compiler installed.');

  const running = new Map<string, RemoteProcess>();
  let nextId = 0;
  let closing = false;

  function onLine(line: string) {
    const [t, id, a, b, c] = line.split(' ');
    const proc = running.get(id!);
    if (!proc) return;
    if (t === 's') {
      proc.pid = Number(a);
      proc.emit('spawn');
    } else if (t === 'c') {
      (a === 'e' ? proc.stderr : proc.stdout).end();
      proc.settle();
    } else if (t === 'e') {
      running.delete(id!);
      proc.stdout.end();
      proc.stderr.end();
      proc.emit('error', Object.assign(new Error(`spawn ${a}`), { code: a }));
    } else if (t === 'x') {
      proc.exited = true;
      proc.settle();
      proc.emit('exit', a === '-' ? null : Number(a), b === '-' ? null : (signalNames.get(b!) ?? null), c === '1');
    }
  }

  function onData(id: string, stream: string, data: Buffer) {
    const proc = running.get(id);
    const output = stream === 'e' ? proc?.stderr : proc?.stdout;
    // After a close command its output may still be in flight: dropped, as asked.
    if (output && !output.closed) output.emit('data', data);
  }

  let helper: ChildProcess = startHelper();
  const send = (fields: string[]) => helper.stdin!.write(frame(fields));

  function startHelper(): ChildProcess {
    const [file, args] =
      kind === 'native'
        ? [NATIVE, []]
        : [process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), here.replace(/spawnerClient\.(ts|js)$/, 'spawnerProcess.$1')]];
    const child = spawn(file, args, {
      // Its own environment holds nothing of ours (no secrets); jobs get theirs explicitly.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdin!.on('error', () => {}); // a dead helper is handled on 'exit'
    child.stdout!.on('data', eventReader(onLine, onData));
    child.on('exit', (code, signal) => {
      if (closing) return;
      log.error('spawner exited; restarting it and failing the jobs it was watching', { code, signal });
      for (const [id, proc] of running) {
        running.delete(id);
        proc.stdout.end();
        proc.stderr.end();
        if (proc.exited) continue;
        if (proc.pid) killProcessGroup(proc.pid, 'SIGKILL');
        proc.emit('exit', null, 'SIGKILL');
      }
      helper = startHelper();
    });
    return child;
  }

  const launcher: Launcher = (file, args, { cwd, env, makeCwd }) => {
    const envEntries = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    checkNoNul([file, cwd, ...args, ...envEntries]);
    const id = (nextId++).toString(36);
    const command = frame(['spawn', id, file, cwd, makeCwd ? '1' : '0', String(args.length), ...args, ...envEntries]);
    const proc = new RemoteProcess(id, send, () => running.delete(id));
    running.set(id, proc);
    helper.stdin!.write(command);
    return proc;
  };

  return {
    kind,
    launcher,
    watching: () => running.size,
    async close() {
      closing = true;
      helper.kill('SIGTERM');
    },
  };
}
