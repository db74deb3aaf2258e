// Baseline for the `jobs` figure: a fresh, minimal Node process that runs
// `/bin/true` COUNT times, CONCURRENCY at a time, with piped stdio (read to
// the end, as a job runner must), and prints {"elapsedMs", ...} as JSON.
// Usage: node spawn-true.mjs CONCURRENCY COUNT
import { spawn } from 'node:child_process';

const concurrency = Number(process.argv[2] ?? 4);
const count = Number(process.argv[3] ?? 2000);
let started = 0;
let failures = 0;

function one() {
  return new Promise((resolve) => {
    const child = spawn('/bin/true', [], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', () => {});
    child.stderr.on('data', () => {});
    child.on('error', () => {
      failures++;
      resolve();
    });
    child.on('close', (code) => {
      if (code !== 0) failures++;
      resolve();
    });
  });
}

async function lane() {
  while (started < count) {
    started++;
    await one();
  }
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: concurrency }, lane));
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0); // this process only, not the children
process.stdout.write(JSON.stringify({ elapsedMs, count, concurrency, failures, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
