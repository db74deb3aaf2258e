// A Launcher that asks a spawner helper to start job processes, and receives
// their output over a unix socket of its own. The helper is native
// (native/spawner.c, built at install) or, where that was not built, Node
// (spawnerProcess.ts); both speak the protocol described in spawner.c.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { accessSync, constants as fsConstants, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import type { LaunchedProcess, Launcher } from './launcher.js';
import { killProcessGroup } from './runner.js';

const HEADER_BYTES = 39; // `<36-char id> p\n`

export type SpawnerKind = 'auto' | 'native' | 'node';

class RemoteProcess extends EventEmitter implements LaunchedProcess {
  pid: number | undefined;
  exited = false;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
}

export interface Spawner {
  /** Which helper runs: 'native' or 'node'. */
  readonly kind: 'native' | 'node';
  launcher: Launcher;
  close(): Promise<void>;
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

/** One request frame: a 4-byte little-endian length, then NUL-terminated fields. */
function frame(fields: string[]): Buffer {
  const body = Buffer.from(fields.join('\0') + '\0', 'utf8');
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

/** Sockets of workers that died without closing (SIGKILL) would pile up in the temp dir. */
function removeStaleSockets(dir: string) {
  for (const name of readdirSync(dir)) {
    const m = /^jobrunner-(\d+)-[0-9a-f]{8}\.sock$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(dir, name), { force: true });
    }
  }
}

export async function startSpawner(log: Logger, want: SpawnerKind = 'auto'): Promise<Spawner> {
  const kind = want === 'node' || (want === 'auto' && !nativeBuilt()) ? 'node' : 'native';
  if (kind === 'native' && !nativeBuilt()) throw new Error(`SPAWNER=native, but ${NATIVE} is missing: run \`npm run build\` (needs a C compiler)`);
  if (kind === 'node' && want === 'auto') log.warn('native spawner not built; starting jobs through the Node spawner (slower starts). Run `npm run build` with a C compiler installed.');

  removeStaleSockets(tmpdir());
  const socketPath = join(tmpdir(), `jobrunner-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  const running = new Map<string, RemoteProcess>();
  let nextId = 0;
  let closing = false;

  // Connections the helper opened ahead of time, until an 's' event names them;
  // and outputs named by an 's' whose connection has not been read yet.
  const spare = new Map<string, { socket: Socket; ended: boolean }>();
  const unclaimed = new Map<string, PassThrough>();
  function attach(socketId: string, target: PassThrough) {
    const entry = spare.get(socketId);
    if (!entry) return void unclaimed.set(socketId, target);
    spare.delete(socketId);
    // A job that wrote nothing may be gone before we get here: its connection has ended already.
    if (entry.ended) target.end();
    else entry.socket.pipe(target);
  }

  const server: Server = createServer((socket: Socket) => {
    socket.once('readable', function readHeader() {
      const header = socket.read(HEADER_BYTES) as Buffer | null;
      if (!header) return void socket.once('readable', readHeader);
      const id = header.toString('latin1', 0, 36);
      const target = unclaimed.get(id);
      if (target) {
        unclaimed.delete(id);
        return void socket.pipe(target);
      }
      // Left unread (and so held back) until an 's' names it.
      const entry = { socket, ended: false };
      spare.set(id, entry);
      socket.once('end', () => (entry.ended = true));
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));

  let helper: ChildProcess = startHelper();

  function onEvent(line: string) {
    const [t, id, a, b, c] = line.split(' ');
    const proc = running.get(id!);
    if (!proc) return;
    if (t === 's') {
      proc.pid = Number(a);
      attach(b!, proc.stdout);
      attach(c!, proc.stderr);
      proc.emit('spawn');
    } else if (t === 'e') {
      running.delete(id!);
      proc.stdout.destroy();
      proc.stderr.destroy();
      proc.emit('error', Object.assign(new Error(`spawn ${a}`), { code: a }));
    } else if (t === 'x') {
      running.delete(id!);
      proc.exited = true;
      proc.emit('exit', a === '-' ? null : Number(a), b === '-' ? null : (signalNames.get(b!) ?? null), c === '1');
    }
  }

  function startHelper(): ChildProcess {
    const [file, args] =
      kind === 'native'
        ? [NATIVE, [socketPath]]
        : [process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), here.replace(/spawnerClient\.(ts|js)$/, 'spawnerProcess.$1'), socketPath]];
    const child = spawn(file, args, {
      // Its own environment holds nothing of ours (no secrets); jobs get theirs explicitly.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdin!.on('error', () => {}); // a dead helper is handled on 'exit'
    createInterface({ input: child.stdout!, crlfDelay: Infinity }).on('line', onEvent);
    child.on('exit', (code, signal) => {
      if (closing) return;
      log.error('spawner exited; restarting it and failing the jobs it was watching', { code, signal });
      for (const target of unclaimed.values()) target.end();
      unclaimed.clear();
      // The dead helper's spare connections are closed and will never be named.
      for (const [socketId, entry] of spare) if (entry.ended) spare.delete(socketId);
      for (const [id, proc] of running) {
        running.delete(id);
        if (proc.exited) continue;
        if (proc.pid) killProcessGroup(proc.pid, 'SIGKILL');
        proc.stdout.end();
        proc.stderr.end();
        proc.emit('exit', null, 'SIGKILL');
      }
      helper = startHelper();
    });
    return child;
  }

  const launcher: Launcher = (file, args, { cwd, env, makeCwd }) => {
    const envEntries = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    checkNoNul([file, cwd, ...args, ...envEntries]);
    const proc = new RemoteProcess();
    const id = `${process.pid.toString(16).padStart(8, '0')}-0000-4000-8000-${(nextId++).toString(16).padStart(12, '0')}`;
    running.set(id, proc);
    helper.stdin!.write(frame([id, file, cwd, makeCwd ? '1' : '0', String(args.length), ...args, ...envEntries]));
    return proc;
  };

  return {
    kind,
    launcher,
    async close() {
      closing = true;
      helper.kill('SIGTERM');
      for (const { socket } of spare.values()) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(socketPath, { force: true });
    },
  };
}
