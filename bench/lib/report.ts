// Prints a figure's targets (ours, baseline, ratio, target, PASS/MISS) with
// the machine, and appends one row per target to bench/RESULTS.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeMachine, shortMachine } from './machine.js';
import { BENCH_DIR } from './server.js';

export interface Row {
  /** e.g. "throughput", "submit→start p50" */
  metric: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
  /** null: informational, no target. */
  pass: boolean | null;
}

export interface FigureReport {
  figure: string;
  rows: Row[];
  /** Free text printed under the table (raw runs, notes); not written to RESULTS.md. */
  notes: string[];
  /** 1-minute load average seen during the figure (the machine may be shared). */
  load?: { min: number; max: number };
  /** What else ran on the figure's cores besides other test runs (e.g. its load generator). */
  alsoOnTheCores?: string;
}

export const RESULTS_FILE = join(BENCH_DIR, 'RESULTS.md');
const ROWS_END = '<!-- new rows are inserted above this line by bench/lib/report.ts -->';

const HEADER = `# Benchmark results

Appended by \`npm run bench\` (one row per target of a figure; every number is
the median of at least 3 runs; ours and the baseline are measured in the same
run on the same machine). See \`bench/README.md\` for what each figure measures.

| date | figure | ours | baseline | ratio | target | result | machine |
| --- | --- | --- | --- | --- | --- | --- | --- |
${ROWS_END}

## Notes per figure

(Maintained by hand: what each figure's latest numbers mean, and why a target is missed.)

### jobs

### submit

### logs

### fanout

### peer
`;

const verdict = (p: boolean | null) => (p === null ? 'info' : p ? 'PASS' : 'MISS');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

export function printReport(r: FigureReport): void {
  const lines = [
    '',
    `== ${r.figure} ==`,
    `machine: ${describeMachine()}`,
    ...(process.env.BENCH_MAIN ? [`service: ${process.env.BENCH_MAIN} (BENCH_MAIN), not dist/ built from src/`] : []),
    ...(r.load ? [`load avg during the figure: ${r.load.min.toFixed(1)}–${r.load.max.toFixed(1)} (machine shared with other test runs${r.alsoOnTheCores ? `; ${r.alsoOnTheCores}` : ''})`] : []),
    ...r.notes,
    '',
    table([['metric', 'ours', 'baseline', 'ratio', 'target', 'result'], ...r.rows.map((x) => [x.metric, x.ours, x.baseline, x.ratio, x.target, verdict(x.pass)])]),
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

export function appendResults(r: FigureReport): void {
  if (process.env.BENCH_NO_RESULTS) return;
  const text = existsSync(RESULTS_FILE) ? readFileSync(RESULTS_FILE, 'utf8') : HEADER;
  // BENCH_LABEL marks rows measured on something other than dist/ as built from src/ (e.g. a patched copy via BENCH_MAIN).
  const label = process.env.BENCH_LABEL ?? (process.env.BENCH_MAIN ? `BENCH_MAIN=${process.env.BENCH_MAIN}` : '');
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ') + 'Z';
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = r.rows
    .map((x) => `| ${date} | ${cell(`${r.figure}${label ? ` [${label}]` : ''}: ${x.metric}`)} | ${cell(x.ours)} | ${cell(x.baseline)} | ${cell(x.ratio)} | ${cell(x.target)} | ${verdict(x.pass)} | ${shortMachine()}${r.load ? `, load ${r.load.min.toFixed(1)}–${r.load.max.toFixed(1)}` : ''} |`)
    .join('\n');
  const at = text.indexOf(ROWS_END);
  const next = at >= 0 ? text.slice(0, at) + rows + '\n' + text.slice(at) : text.trimEnd() + '\n' + rows + '\n';
  writeFileSync(RESULTS_FILE, next);
}

export function report(r: FigureReport): FigureReport {
  printReport(r);
  appendResults(r);
  return r;
}
