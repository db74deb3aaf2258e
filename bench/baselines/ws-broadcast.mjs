// Baseline for the `fanout` figure: a bare Node process with a plain `ws`
// server. Once CLIENTS sockets are connected it spawns the same ticking
// child and broadcasts each stdout chunk to every socket as JSON
// {"data": ...}, then closes the sockets when the child exits.
// Prints "listening PORT" when ready. Usage: node ws-broadcast.mjs PORT CLIENTS DELAY_MS DURATION_MS INTERVAL_MS
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const [port, clients, delay, duration, interval] = process.argv.slice(2).map(Number);
const tick = fileURLToPath(new URL('./tick.mjs', import.meta.url));
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
let started = false;
wss.on('listening', () => process.stdout.write(`listening ${wss.address().port}\n`));
wss.on('connection', () => {
  if (started || wss.clients.size < clients) return;
  started = true;
  const child = spawn(process.execPath, [tick, String(delay), String(duration), String(interval)], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (data) => {
    const msg = JSON.stringify({ data });
    for (const ws of wss.clients) ws.send(msg);
  });
  child.on('close', () => {
    for (const ws of wss.clients) ws.close(1000, 'done');
    setTimeout(() => process.exit(0), 2000).unref();
  });
});
process.on('SIGTERM', () => process.exit(0));
