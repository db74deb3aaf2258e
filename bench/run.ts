// `npm run bench` runs every figure; `npm run bench -- <name> [<name>...]`
// runs the named ones. Each figure starts its own servers (fresh DATA_DIR,
// free 127.0.0.1 port), measures ours and its baseline in the same run,
// prints the figures with the machine, and appends rows to bench/RESULTS.md.
//
// Environment knobs: BENCH_REPS (≥ 3), BENCH_WORKER_CONCURRENCY,
// BENCH_PROFILE_DIR (run every server with --cpu-prof into that directory),
// BENCH_BUILD=auto|always|never, BENCH_NO_RESULTS=1 (do not touch RESULTS.md),
// BENCH_KEEP_DATA=1 (keep the servers' data directories).
import { closeHttpAgent } from './lib/http.js';
import { describeMachine } from './lib/machine.js';
import type { FigureReport } from './lib/report.js';
import { ensureBuilt } from './lib/server.js';

const figures: Record<string, () => Promise<FigureReport>> = {
  jobs: async () => (await import('./jobs.js')).jobs(),
  submit: async () => (await import('./submit.js')).submitFigure(),
  peer: async () => (await import('./peer.js')).peer(),
  logs: async () => (await import('./logs.js')).logs(),
  fanout: async () => (await import('./fanout.js')).fanout(),
  cluster: async () => (await import('./cluster.js')).cluster(),
  dashboard: async () => (await import('./dashboard.js')).dashboard(),
  retention: async () => (await import('./retention.js')).retention(),
  metrics: async () => (await import('./metrics.js')).metricsFigure(),
};

async function main() {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  if (args.includes('-h') || args.includes('--help')) {
    process.stdout.write(`usage: npm run bench [-- <figure>...]   figures: ${Object.keys(figures).join(', ')}\n`);
    return 0;
  }
  const unknown = args.filter((a) => !(a in figures));
  if (unknown.length) {
    process.stderr.write(`unknown figure ${unknown.join(', ')}; choose from: ${Object.keys(figures).join(', ')}\n`);
    return 2;
  }
  const names = args.length ? args : Object.keys(figures);
  process.stdout.write(`machine: ${describeMachine()}\nfigures: ${names.join(', ')}\n`);
  await ensureBuilt();
  const failed: string[] = [];
  const missed: string[] = [];
  for (const name of names) {
    const started = Date.now();
    try {
      const r = await figures[name]!();
      for (const row of r.rows) if (row.pass === false) missed.push(`${name}: ${row.metric}`);
    } catch (err) {
      failed.push(name);
      process.stderr.write(`\n${name}: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.stdout.write(`(${name} took ${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  }
  process.stdout.write(`\nsummary: ${names.length - failed.length}/${names.length} figures ran; ${missed.length ? `MISS: ${missed.join('; ')}` : failed.length ? 'no target missed among the figures that ran' : 'every target met'}${failed.length ? `; failed: ${failed.join(', ')}` : ''}\n`);
  return failed.length ? 1 : 0;
}

main()
  .then((code) => {
    closeHttpAgent();
    process.exit(code);
  })
  .catch((err) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
