// Shared knobs of every figure and the "run this file alone" helper.
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FigureReport } from './report.js';
import { closeHttpAgent } from './http.js';

/** Repetitions per measurement (the median is reported); at least 3. */
export const REPS = Math.max(3, Number(process.env.BENCH_REPS ?? 3));

/** The service's default WORKER_CONCURRENCY (max(4, 2 × cores)) unless BENCH_WORKER_CONCURRENCY says otherwise. */
export const WORKER_CONCURRENCY = Number(process.env.BENCH_WORKER_CONCURRENCY ?? Math.max(4, 2 * cpus().length));

export type Figure = () => Promise<FigureReport>;

/** `tsx bench/<name>.ts` runs that figure alone, like `npm run bench -- <name>`. */
export function runIfMain(url: string, figure: Figure): void {
  if (!process.argv[1] || resolve(process.argv[1]) !== fileURLToPath(url)) return;
  figure()
    .then(() => {
      closeHttpAgent();
      process.exit(0);
    })
    .catch((err) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    });
}

export const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
