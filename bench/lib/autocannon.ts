// Runs autocannon (devDependency) as its own process, so the load generator
// does not share an event loop with the bench, and parses its --json output.
import { join } from 'node:path';
import { assertLocal } from './http.js';
import { run } from './proc.js';
import { ROOT } from './server.js';

export interface CannonResult {
  /** 2xx responses per second over the run. */
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
}

export async function cannon(opts: { url: string; method?: string; headers?: Record<string, string>; body?: string; connections?: number; durationS?: number }): Promise<CannonResult> {
  assertLocal(opts.url);
  const args = [join(ROOT, 'node_modules', 'autocannon', 'autocannon.js'), '-j', '-n', '-c', String(opts.connections ?? 50), '-d', String(opts.durationS ?? 10), '-m', opts.method ?? 'GET'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}=${v}`);
  if (opts.body !== undefined) args.push('-b', opts.body);
  args.push(opts.url);
  const out = await run('autocannon', process.execPath, args, { timeoutMs: ((opts.durationS ?? 10) + 60) * 1000 });
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new Error(`autocannon printed no JSON:\n${out.slice(0, 500)}`);
  const r = JSON.parse(line) as Record<string, any>;
  const durationS = Number(r.duration);
  return {
    rps: Number(r['2xx']) / durationS,
    p50: Number(r.latency.p50),
    p99: Number(r.latency.p99),
    ok: Number(r['2xx']),
    non2xx: Number(r.non2xx),
    errors: Number(r.errors),
    timeouts: Number(r.timeouts),
    durationS,
  };
}
