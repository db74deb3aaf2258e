// A Launcher that asks the spawner helper (spawnerProcess.ts) to fork job
// processes, and receives their output over a unix socket of its own.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import type { LaunchedProcess, Launcher } from './launcher.js';
import { killProcessGroup } from './runner.js';

const HEADER_BYTES = 39; // `<36-char uuid> o|e\n`

class RemoteProcess extends EventEmitter implements LaunchedProcess {
  pid: number | undefined;
  exited = false;
  /** Output connections still to arrive; they may come after the exit message. */
  awaiting = 2;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
}

type Message =
  | { t: 'spawned'; id: string; pid: number; pooled?: [string, string] }
  | { t: 'error'; id: string; code: string }
  | { t: 'exit'; id: string; code: number | null; signal: NodeJS.Signals | null };

export interface Spawner {
  launcher: Launcher;
  close(): Promise<void>;
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

export async function startSpawner(log: Logger): Promise<Spawner> {
  removeStaleSockets(tmpdir());
  const socketPath = join(tmpdir(), `jobrunner-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  const running = new Map<string, RemoteProcess>();
  let nextId = 0;
  let closing = false;

  // Connections the spawner opened ahead of time, until a 'spawned' names them;
  // and outputs named by a 'spawned' whose connection has not been read yet.
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
      const [id, kind] = header.toString('latin1').trim().split(' ');
      if (kind === 'p') {
        const target = unclaimed.get(id!);
        if (target) {
          unclaimed.delete(id!);
          return void socket.pipe(target);
        }
        // Left unread (and so held back) until a 'spawned' names it.
        const entry = { socket, ended: false };
        spare.set(id!, entry);
        return void socket.once('end', () => (entry.ended = true));
      }
      const proc = running.get(id!);
      if (!proc) return void socket.destroy();
      if (--proc.awaiting === 0 && proc.exited) running.delete(id!);
      socket.pipe(kind === 'o' ? proc.stdout : proc.stderr);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));

  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  let helper: ChildProcess = spawnHelper();

  function spawnHelper(): ChildProcess {
    const child = fork(here.replace(/spawnerClient\.(ts|js)$/, `spawnerProcess.$1`), [socketPath], {
      // Its own environment holds nothing of ours (no secrets); jobs get theirs explicitly.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      execArgv: fromSource ? ['--import', 'tsx'] : [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (msg: Message) => {
      const proc = running.get(msg.id);
      if (!proc) return;
      if (msg.t === 'spawned') {
        proc.pid = msg.pid;
        if (msg.pooled) {
          proc.awaiting = 0;
          attach(msg.pooled[0], proc.stdout);
          attach(msg.pooled[1], proc.stderr);
        }
        proc.emit('spawn');
      } else if (msg.t === 'error') {
        running.delete(msg.id);
        proc.stdout.destroy();
        proc.stderr.destroy();
        proc.emit('error', Object.assign(new Error(`spawn ${msg.code}`), { code: msg.code }));
      } else {
        proc.exited = true;
        if (proc.awaiting === 0) running.delete(msg.id);
        proc.emit('exit', msg.code, msg.signal);
      }
    });
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
      helper = spawnHelper();
    });
    return child;
  }

  const launcher: Launcher = (file, args, { cwd, env }) => {
    const proc = new RemoteProcess();
    const id = `${process.pid.toString(16).padStart(8, '0')}-0000-4000-8000-${(nextId++).toString(16).padStart(12, '0')}`;
    running.set(id, proc);
    helper.send({ t: 'spawn', id, file, args, cwd, env });
    return proc;
  };

  return {
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
