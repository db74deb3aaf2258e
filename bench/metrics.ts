// Figure metrics: what the Prometheus instrumentation costs, measured on the
// `jobs` and `submit` figures with metrics on (the default, scraped once a
// second, far more often than a Prometheus would) and with METRICS=off, in
// the same run, interleaved, the order swapped every repetition. Kept short:
// BENCH_METRICS_JOBS jobs (default 1000, JOB_ISOLATION=off so the jobs
// themselves cost little and the pipeline's own CPU shows) and BENCH_METRICS_SECONDS
// of autocannon (default 5, after 1 s of warm-up). The server's CPU time per
// job and per request is reported beside: on a machine shared with other
// runs, wall-clock rates swing by 2-3x between repetitions, CPU time far less.
import { cannon } from './lib/autocannon.js';
import { REPS, WORKER_CONCURRENCY, pct, runIfMain } from './lib/figure.js';
import { loadSampler } from './lib/machine.js';
import { cpuMs, watchdog } from './lib/proc.js';
import { report, type FigureReport } from './lib/report.js';
import { login, withServer, type BenchServer } from './lib/server.js';
import { fmt, median, runs } from './lib/stats.js';
import { oursThroughput } from './jobs.js';

const JOBS = Number(process.env.BENCH_METRICS_JOBS ?? 1000);
const SECONDS = Number(process.env.BENCH_METRICS_SECONDS ?? 5);
const CONNECTIONS = 50;
/** How often /metrics is scraped while metrics are on (BENCH_METRICS_SCRAPE_MS; 0: never, to tell the instrumentation from the collection). */
const SCRAPE_MS = Number(process.env.BENCH_METRICS_SCRAPE_MS ?? 1000);
const JOB = JSON.stringify({ name: 'b', command: ['true'] });

type Mode = 'on' | 'off';
const envFor = (mode: Mode): Record<string, string> => (mode === 'on' ? { METRICS_PUBLIC: 'on' } : { METRICS: 'off' });

/** Scrapes /metrics every SCRAPE_MS while `body` runs (metrics on): the collection cost is part of the figure. */
async function scraped<T>(s: BenchServer, mode: Mode, body: () => Promise<T>): Promise<T> {
  if (mode === 'off' || SCRAPE_MS === 0) return body();
  let scrapes = 0;
  const timer = setInterval(() => {
    void fetch(`${s.url}/metrics`).then(async (r) => {
      if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
      await r.text();
      scrapes++;
    });
  }, SCRAPE_MS);
  try {
    return await body();
  } finally {
    clearInterval(timer);
    if (scrapes === 0) throw new Error('no scrape of /metrics succeeded during the run');
  }
}

interface JobsRun { jobsPerS: number; cpuMsPerJob: number }
interface SubmitRun { rps: number; p99: number; cpuMsPerReq: number }

async function jobsRun(mode: Mode): Promise<JobsRun> {
  const env = { WORKER_CONCURRENCY: String(WORKER_CONCURRENCY), DEFAULT_MAX_CONCURRENT_JOBS: '10000', JOB_ISOLATION: 'off', ...envFor(mode) };
  return withServer({ env, label: `metrics-jobs-${mode}` }, async (s) => {
    const token = await login(s.api);
    const r = await scraped(s, mode, () => oursThroughput(s, token, ['true'], JOBS));
    if (r.failed) throw new Error(`${r.failed} jobs failed`);
    return { jobsPerS: JOBS / (r.elapsedMs / 1000), cpuMsPerJob: r.cpuMsPerJob };
  });
}

async function submitRun(mode: Mode): Promise<SubmitRun> {
  return withServer({ noWorker: true, env: envFor(mode), label: `metrics-submit-${mode}` }, async (s) => {
    const token = await login(s.api);
    const opts = { url: `${s.api}/jobs`, method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JOB, connections: CONNECTIONS };
    await cannon({ ...opts, durationS: 1 });
    return scraped(s, mode, async () => {
      const cpu0 = cpuMs(s.pid) ?? NaN;
      const r = await cannon({ ...opts, durationS: SECONDS });
      const cpu1 = cpuMs(s.pid) ?? NaN;
      if (r.ok === 0) throw new Error(`submit: no 2xx responses (non2xx ${r.non2xx}, errors ${r.errors})`);
      return { rps: r.rps, p99: r.p99, cpuMsPerReq: (cpu1 - cpu0) / Math.max(1, r.ok + r.non2xx) };
    });
  });
}

export async function metricsFigure(): Promise<FigureReport> {
  const stopWatchdog = watchdog('metrics', 10 * 60_000);
  const load = loadSampler();
  const jobs: Record<Mode, JobsRun[]> = { on: [], off: [] };
  const submit: Record<Mode, SubmitRun[]> = { on: [], off: [] };
  for (let rep = 1; rep <= REPS; rep++) {
    const order: Mode[] = rep % 2 ? ['on', 'off'] : ['off', 'on'];
    for (const mode of order) {
      process.stdout.write(`metrics: run ${rep}/${REPS}: jobs, metrics ${mode} (${JOBS} jobs) ...`);
      jobs[mode].push(await jobsRun(mode));
      process.stdout.write(` ${fmt(jobs[mode].at(-1)!.jobsPerS)} jobs/s\n`);
    }
    for (const mode of order) {
      process.stdout.write(`metrics: run ${rep}/${REPS}: submit, metrics ${mode} (${SECONDS} s) ...`);
      submit[mode].push(await submitRun(mode));
      process.stdout.write(` ${fmt(submit[mode].at(-1)!.rps, 0)} req/s\n`);
    }
  }
  stopWatchdog();
  const m = <T>(rs: T[], f: (r: T) => number) => median(rs.map(f));
  const jobsRatio = m(jobs.on, (r) => r.jobsPerS) / m(jobs.off, (r) => r.jobsPerS);
  const submitRatio = m(submit.on, (r) => r.rps) / m(submit.off, (r) => r.rps);
  return report(
    {
      figure: 'metrics',
      load: load.stop(),
      rows: [
        { metric: `jobs throughput, metrics on${SCRAPE_MS ? '' : ' (not scraped)'} vs off (${JOBS} × true, isolation off)`, ours: `${fmt(m(jobs.on, (r) => r.jobsPerS))} jobs/s, ${fmt(m(jobs.on, (r) => r.cpuMsPerJob), 2)} CPU-ms/job`, baseline: `${fmt(m(jobs.off, (r) => r.jobsPerS))} jobs/s, ${fmt(m(jobs.off, (r) => r.cpuMsPerJob), 2)} CPU-ms/job (METRICS=off)`, ratio: pct(jobsRatio), target: '≥ 95% of METRICS=off', pass: jobsRatio >= 0.95 },
        { metric: 'server+helper CPU per job, metrics on vs off', ours: `${fmt(m(jobs.on, (r) => r.cpuMsPerJob), 3)} ms`, baseline: `${fmt(m(jobs.off, (r) => r.cpuMsPerJob), 3)} ms (METRICS=off)`, ratio: pct(m(jobs.on, (r) => r.cpuMsPerJob) / m(jobs.off, (r) => r.cpuMsPerJob)), target: '—', pass: null },
        { metric: 'server CPU per submit request, metrics on vs off', ours: `${fmt(m(submit.on, (r) => r.cpuMsPerReq), 3)} ms`, baseline: `${fmt(m(submit.off, (r) => r.cpuMsPerReq), 3)} ms (METRICS=off)`, ratio: pct(m(submit.on, (r) => r.cpuMsPerReq) / m(submit.off, (r) => r.cpuMsPerReq)), target: '—', pass: null },
        { metric: `submit REST req/s, metrics on${SCRAPE_MS ? '' : ' (not scraped)'} vs off (${CONNECTIONS} connections, ${SECONDS} s)`, ours: `${fmt(m(submit.on, (r) => r.rps), 0)} req/s, p99 ${fmt(m(submit.on, (r) => r.p99), 0)} ms, ${fmt(m(submit.on, (r) => r.cpuMsPerReq), 3)} CPU-ms/req`, baseline: `${fmt(m(submit.off, (r) => r.rps), 0)} req/s, p99 ${fmt(m(submit.off, (r) => r.p99), 0)} ms, ${fmt(m(submit.off, (r) => r.cpuMsPerReq), 3)} CPU-ms/req (METRICS=off)`, ratio: pct(submitRatio), target: '≥ 95% of METRICS=off', pass: submitRatio >= 0.95 },
      ],
      notes: [
        `jobs/s, metrics on: ${runs(jobs.on.map((r) => r.jobsPerS), 1)}; off: ${runs(jobs.off.map((r) => r.jobsPerS), 1)}`,
        `server+helper CPU-ms per job, metrics on: ${runs(jobs.on.map((r) => r.cpuMsPerJob), 3)}; off: ${runs(jobs.off.map((r) => r.cpuMsPerJob), 3)}`,
        `submit req/s, metrics on: ${runs(submit.on.map((r) => r.rps), 0)}; off: ${runs(submit.off.map((r) => r.rps), 0)}`,
        `server CPU-ms per request, metrics on: ${runs(submit.on.map((r) => r.cpuMsPerReq), 3)}; off: ${runs(submit.off.map((r) => r.cpuMsPerReq), 3)}`,
        SCRAPE_MS ? `metrics on: /metrics scraped every ${SCRAPE_MS} ms during the measured part` : 'metrics on: never scraped (BENCH_METRICS_SCRAPE_MS=0)',
      ],
      alsoOnTheCores: 'the load generator (50 REST clients or autocannon) and the jobs',
    },
  );
}

runIfMain(import.meta.url, metricsFigure);
