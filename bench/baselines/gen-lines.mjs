// The job of the `logs` figure: writes BYTES bytes of text lines of mixed
// length (1 to ~400 characters, deterministic) to stdout, respecting
// backpressure, then exits. Usage: node gen-lines.mjs BYTES
const total = Number(process.argv[2] ?? 500 * 1024 * 1024);
const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_=+/';
// A pool of lines built once; blocks of ~64 KiB are cut from it in rotation.
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const lines = [];
for (let i = 0; i < 4096; i++) {
  const len = rnd() < 0.7 ? 1 + Math.floor(rnd() * 80) : 80 + Math.floor(rnd() * 320);
  let s = `${i} `;
  while (s.length < len) s += alphabet[Math.floor(rnd() * alphabet.length)];
  lines.push(s + '\n');
}
const pool = Buffer.from(lines.join(''), 'utf8');
const BLOCK = 64 * 1024;
let written = 0;
let offset = 0;
function block() {
  const n = Math.min(BLOCK, total - written);
  // Cut at a newline so every block holds whole lines.
  let end = Math.min(offset + n, pool.length);
  const nl = pool.lastIndexOf(10, end - 1);
  if (nl >= offset && total - written > n) end = nl + 1;
  const b = pool.subarray(offset, end);
  offset = end >= pool.length ? 0 : end;
  return b;
}
function pump() {
  while (written < total) {
    let b = block();
    if (b.length > total - written) b = b.subarray(0, total - written);
    written += b.length;
    if (!process.stdout.write(b)) return void process.stdout.once('drain', pump);
  }
}
pump();
