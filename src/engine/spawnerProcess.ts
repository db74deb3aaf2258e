// The Node spawner helper: the fallback for hosts where the native one
// (native/spawner.c, the protocol is described there) was not built. A small
// process of its own, because Node's spawn() forks the caller and its cost
// grows with the caller's memory. Imports nothing but Node's own modules.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { constants } from 'node:os';

const SOCKET = process.argv[2]!;
// Two per job: enough for a burst of starts on a worker of usual size.
const POOL_TARGET = 16;

const emit = (line: string) => process.stdout.write(`${line}\n`);

let nextConn = 0;
function open(): Promise<{ id: string; socket: Socket }> {
  const id = `${process.pid.toString(16).padStart(8, '0')}-0000-4000-9000-${(nextConn++).toString(16).padStart(12, '0')}`;
  return new Promise((resolve, reject) => {
    const socket = connect(SOCKET);
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`${id} p\n`, (err) => (err ? reject(err) : resolve({ id, socket }))));
  });
}

const pool: { id: string; socket: Socket }[] = [];
let opening = 0;
function refill() {
  while (pool.length + opening < POOL_TARGET) {
    opening++;
    open()
      .then((c) => pool.push(c))
      // The worker is going away or overloaded: take() connects on demand meanwhile.
      .catch(() => {})
      .finally(() => opening--);
  }
}
const take = () => pool.shift() ?? open();

function makeDir(dir: string) {
  try {
    mkdirSync(dir, { mode: 0o750 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') mkdirSync(dir, { recursive: true, mode: 0o750 });
    else if (code !== 'EEXIST') throw err;
  }
}

/** SIGKILLs what is left of a job's process group; false when nothing was (see native/spawner.c). */
function killGroup(pgid: number): boolean {
  try {
    process.kill(-pgid, 'SIGKILL');
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const signalNumber = (name: NodeJS.Signals | null) => (name ? String(constants.signals[name] ?? '-') : '-');

async function start(fields: string[]) {
  const [id, file, cwd, makeCwd, argc] = fields as [string, string, string, string, string];
  const args = fields.slice(5, 5 + Number(argc));
  const env = Object.fromEntries(fields.slice(5 + Number(argc)).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  let out: Socket | undefined;
  let err: Socket | undefined;
  try {
    if (makeCwd === '1') makeDir(cwd);
    const [o, e] = await Promise.all([take(), take()]);
    [out, err] = [o.socket, e.socket];
    refill();
    const child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', out, err] });
    child.once('spawn', () => emit(`s ${id} ${child.pid} ${o.id} ${e.id}`));
    child.once('error', (e: NodeJS.ErrnoException) => emit(`e ${id} ${e.code ?? 'EIO'}`));
    child.once('exit', (code, signal) => emit(`x ${id} ${code ?? '-'} ${signalNumber(signal)} ${killGroup(child.pid!) ? 0 : 1}`));
  } catch (e) {
    emit(`e ${id} ${(e as NodeJS.ErrnoException).code ?? 'EIO'}`);
  } finally {
    // The child holds its own copies; ours would keep the streams open.
    out?.destroy();
    err?.destroy();
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
    void start(fields);
  }
});
// The worker is gone: nothing more will be asked.
process.stdin.on('end', () => process.exit(0));
process.stdout.on('error', () => process.exit(0));
refill();
