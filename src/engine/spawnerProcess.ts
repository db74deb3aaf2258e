// The spawner: a small helper process that forks job processes for the
// worker. Node's spawn() forks the calling process, and its cost grows with
// that process's memory; this one stays tiny, so the spawn rate no longer
// depends on the API's heap. Imports nothing but Node's own modules.
//
// Protocol (IPC, JSON): {t:'spawn', id, file, args, cwd, env, socket} in;
// {t:'spawned', id, pid} | {t:'error', id, code} | {t:'exit', id, code, signal} out.
// Output does not pass through here: the job's stdout/stderr are unix-socket
// connections to the worker, each announced by a 39-byte header
// `<uuid> o|e\n`, so backpressure goes straight from the worker to the job.
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';

interface SpawnRequest {
  t: 'spawn';
  id: string;
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  socket: string;
}

const send = (msg: object) => process.send?.(msg);

function open(path: string, header: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('error', reject);
    s.once('connect', () => s.write(header, (err) => (err ? reject(err) : resolve(s))));
  });
}

async function start(req: SpawnRequest) {
  let out: Socket | undefined;
  let err: Socket | undefined;
  try {
    [out, err] = await Promise.all([open(req.socket, `${req.id} o\n`), open(req.socket, `${req.id} e\n`)]);
    const child = spawn(req.file, req.args, { cwd: req.cwd, env: req.env, detached: true, stdio: ['ignore', out, err] });
    child.once('spawn', () => send({ t: 'spawned', id: req.id, pid: child.pid }));
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
// The worker is gone: nothing more will be asked.
process.on('disconnect', () => process.exit(0));
