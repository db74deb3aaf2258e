// Baseline for the `logs` figure: a bare Node process that spawns the same
// generator and reads its stdout to the end (decoding it as UTF-8 text, as
// the service must), then prints {"bytes", "elapsedMs"} as JSON.
// Usage: node read-child.mjs BYTES
import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';

const bytes = process.argv[2] ?? String(500 * 1024 * 1024);
const gen = fileURLToPath(new URL('./gen-lines.mjs', import.meta.url));
const t0 = performance.now();
const child = spawn(process.execPath, [gen, bytes], { stdio: ['ignore', 'pipe', 'pipe'] });
const decoder = new StringDecoder('utf8');
let received = 0;
let chars = 0;
child.stdout.on('data', (b) => {
  received += b.length;
  chars += decoder.write(b).length;
});
child.stderr.resume();
child.on('close', (code) => {
  chars += decoder.end().length;
  const elapsedMs = performance.now() - t0;
  process.stdout.write(JSON.stringify({ bytes: received, chars, elapsedMs, code }) + '\n');
});
