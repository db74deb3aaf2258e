// The spawner: a small helper process that forks job processes for the
// worker. Node's spawn() forks the calling process, and its cost grows with
// that process's memory; this one stays tiny, so the spawn rate no longer
// depends on the API's heap. Imports nothing but Node's own modules.
//
// Protocol (IPC, JSON): {t:'spawn', id, file, args, cwd, env} in;
// {t:'spawned', id, pid, pooled?: [outId, errId]} | {t:'error', id, code} |
// {t:'exit', id, code, signal} out. Output does not pass through here: the
// job's stdout/stderr are unix-socket connections to the worker (its path is
// argv[2]), each announced by a 39-byte header `<uuid> o|e|p\n`, so
// backpressure goes straight from the worker to the job. Connections are
// opened ahead of time (kind p, named in 'spawned'), so starting a job does
// not wait for the worker's busy event loop to accept two connections.
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';

interface SpawnRequest {
  t: 'spawn';
  id: string;
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

const SOCKET = process.argv[2]!;
// Two per job: enough for a burst of starts on a worker of usual size.
const POOL_TARGET = 16;

const send = (msg: object) => process.send?.(msg);

function open(path: string, header: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('error', reject);
    s.once('connect', () => s.write(header, (err) => (err ? reject(err) : resolve(s))));
  });
}

const pool: { id: string; socket: Socket }[] = [];
let opening = 0;
let nextPooled = 0;

function refill() {
  while (pool.length + opening < POOL_TARGET) {
    opening++;
    const id = `${process.pid.toString(16).padStart(8, '0')}-0000-4000-9000-${(nextPooled++).toString(16).padStart(12, '0')}`;
    open(SOCKET, `${id} p\n`)
      .then((socket) => pool.push({ id, socket }))
      // The worker is going away or overloaded: start() connects on demand meanwhile.
      .catch(() => {})
      .finally(() => opening--);
  }
}

async function start(req: SpawnRequest) {
  let out: Socket | undefined;
  let err: Socket | undefined;
  try {
    let pooled: [string, string] | undefined;
    if (pool.length >= 2) {
      const [o, e] = pool.splice(0, 2) as [{ id: string; socket: Socket }, { id: string; socket: Socket }];
      [out, err, pooled] = [o.socket, e.socket, [o.id, e.id]];
    } else {
      [out, err] = await Promise.all([open(SOCKET, `${req.id} o\n`), open(SOCKET, `${req.id} e\n`)]);
    }
    refill();
    const child = spawn(req.file, req.args, { cwd: req.cwd, env: req.env, detached: true, stdio: ['ignore', out, err] });
    child.once('spawn', () => send({ t: 'spawned', id: req.id, pid: child.pid, pooled }));
    child.once('error', (e: NodeJS.ErrnoException) => send({ t: 'error', id: req.id, code: e.code ?? e.message }));
    child.once('exit', (code, signal) => send({ t: 'exit', id: req.id, code, signal }));
  } catch (e) {
    send({ t: 'error', id: req.id, code: (e as NodeJS.ErrnoException).code ?? 'failed' });
  } finally {
    // The child holds its own copies; ours would keep the streams open.
    out?.destroy();
    err?.destroy();
  }
}

process.on('message', (msg: SpawnRequest) => {
  if (msg?.t === 'spawn') void start(msg);
});
refill();
// The worker is gone: nothing more will be asked.
process.on('disconnect', () => process.exit(0));
