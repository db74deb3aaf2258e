// Figure 1, jobs: end-to-end throughput of 2,000 trivial jobs (["true"])
// submitted through REST by 50 concurrent clients, counted from the first
// submit until all are terminal; baseline: a fresh minimal Node process
// spawning /bin/true with piped stdio at concurrency WORKER_CONCURRENCY.
// Also submit→start latency on an idle server, one job at a time.
import { join } from 'node:path';
import { concurrently, getJob, listAll, submit, TERMINAL, waitAllTerminal } from './lib/api.js';
import { REPS, WORKER_CONCURRENCY, pct, runIfMain } from './lib/figure.js';
import { loadSampler } from './lib/machine.js';
import { cpuMs, cpuMsTree, machineBusyMs, run, watchdog } from './lib/proc.js';
import { report, type FigureReport } from './lib/report.js';
import { BENCH_DIR, login, profileDirFor, withServer, type BenchServer } from './lib/server.js';
import { fmt, median, nowMs, percentile, runs, sleep } from './lib/stats.js';

export const JOBS = Number(process.env.BENCH_JOBS ?? 2000);
export const CLIENTS = 50;
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 100);
const WARMUP_JOBS = 50;

export interface ThroughputRun {
  /** First submit sent → last finished_at recorded by the server. */
  elapsedMs: number;
  /** First submit sent → all terminal seen by polling /jobs/stats (50 ms). */
  polledMs: number;
  submitMs: number;
  failed: number;
  /** started_at − created_at of the measured jobs (under load). */
  queueMs: number[];
  /** CPU time of the server and its helper processes (not the jobs) per job, first submit → all terminal. */
  cpuMsPerJob: number;
  /** The server process's share of cpuMsPerJob (the rest is the spawner helper). */
  serverCpuMsPerJob: number;
  /** Busy CPU of the whole machine per job over the same window: clients, jobs and kernel included. */
  machineCpuMsPerJob: number;
}

/** Submits `count` (JOBS) jobs from 50 clients on a server with a worker; waits until all are terminal. */
export async function oursThroughput(server: BenchServer, token: string, command: string[] = ['true'], count = JOBS): Promise<ThroughputRun> {
  const { api } = server;
  // Warm-up: JIT, statement caches, run directories.
  await concurrently(WARMUP_JOBS, 10, async () => void (await submit(api, token, command, 'warmup')));
  await waitAllTerminal(api, token, WARMUP_JOBS, 120_000);
  await sleep(200);

  const cpu0 = cpuMsTree(server.pid);
  const own0 = cpuMs(server.pid) ?? 0;
  const machine0 = machineBusyMs();
  const t0 = nowMs();
  await concurrently(count, CLIENTS, async () => void (await submit(api, token, command)));
  const submitMs = nowMs() - t0;
  const done = await waitAllTerminal(api, token, WARMUP_JOBS + count, 600_000);
  const cpu1 = cpuMsTree(server.pid);
  const own1 = cpuMs(server.pid) ?? 0;
  const machine1 = machineBusyMs();
  const measured = (await listAll(api, token)).filter((j) => Date.parse(j.created_at) >= Math.floor(t0));
  if (measured.length !== count) throw new Error(`expected ${count} measured jobs, found ${measured.length}`);
  const lastFinish = Math.max(...measured.map((j) => Date.parse(j.finished_at!)));
  return {
    elapsedMs: lastFinish - t0,
    polledMs: done.at - t0,
    submitMs,
    failed: measured.filter((j) => j.status !== 'success').length,
    queueMs: measured.map((j) => Date.parse(j.started_at!) - Date.parse(j.created_at)),
    cpuMsPerJob: (cpu1 - cpu0) / count,
    serverCpuMsPerJob: (own1 - own0) / count,
    machineCpuMsPerJob: (machine1 - machine0) / count,
  };
}

export async function baselineSpawn(concurrency: number, count = JOBS): Promise<{ elapsedMs: number; cpuMsPerJob: number }> {
  const out = await run('baseline spawn', process.execPath, [join(BENCH_DIR, 'baselines', 'spawn-true.mjs'), String(concurrency), String(count)], { timeoutMs: 600_000 });
  const r = JSON.parse(out) as { elapsedMs: number; failures: number; cpuMs: number };
  if (r.failures) throw new Error(`baseline: ${r.failures} spawns failed`);
  return { elapsedMs: r.elapsedMs, cpuMsPerJob: r.cpuMs / count };
}

/** One job at a time on an idle server: client send → started_at, and created_at → started_at. */
async function idleLatency(server: BenchServer, token: string, samples: number) {
  const { api } = server;
  const fromSend: number[] = [];
  const fromCreated: number[] = [];
  for (let i = 0; i < samples + 5; i++) {
    await sleep(20); // idle: the previous job is finished and the loop is quiet
    const sent = nowMs();
    const job = await submit(api, token, ['true'], 'latency');
    let j = job;
    await sleep(15);
    const deadline = Date.now() + 30_000;
    while (!TERMINAL.has(j.status) && j.started_at === null) {
      if (Date.now() > deadline) throw new Error(`job ${job.id} did not start within 30 s`);
      await sleep(5);
      j = await getJob(api, token, job.id);
    }
    if (i < 5) continue; // warm-up samples
    const started = Date.parse(j.started_at!);
    fromSend.push(started - sent);
    fromCreated.push(started - Date.parse(j.created_at));
    // Let it finish so the next sample starts on an idle server.
    while (!TERMINAL.has(j.status)) {
      if (Date.now() > deadline) throw new Error(`job ${job.id} did not finish within 30 s`);
      await sleep(5);
      j = await getJob(api, token, job.id);
    }
  }
  return { fromSend, fromCreated };
}

export async function jobs(): Promise<FigureReport> {
  const stopWatchdog = watchdog('jobs', 40 * 60_000);
  const load = loadSampler();
  const env = { WORKER_CONCURRENCY: String(WORKER_CONCURRENCY), DEFAULT_MAX_CONCURRENT_JOBS: '10000' };
  const ours: ThroughputRun[] = [];
  // The same run without job isolation (JOB_ISOLATION=off): what namespaces, cgroups and identity cost.
  const unisolated: ThroughputRun[] = [];
  const base: number[] = [];
  const baseCpu: number[] = [];
  const lat: { p50: number; p99: number; cp50: number; cp99: number }[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    process.stdout.write(`jobs: run ${rep}/${REPS}: ours (${JOBS} jobs, ${CLIENTS} clients, WORKER_CONCURRENCY=${WORKER_CONCURRENCY}) ...`);
    const r = await withServer({ env, label: 'jobs', cpuProfDir: profileDirFor(`jobs-${rep}`) }, async (s) => {
      const token = await login(s.api);
      const t = await oursThroughput(s, token);
      await sleep(500);
      const l = await idleLatency(s, token, LATENCY_SAMPLES);
      return { t, l };
    });
    ours.push(r.t);
    lat.push({ p50: percentile(r.l.fromSend, 50), p99: percentile(r.l.fromSend, 99), cp50: percentile(r.l.fromCreated, 50), cp99: percentile(r.l.fromCreated, 99) });
    process.stdout.write(` ${fmt(r.t.elapsedMs / 1000, 2)} s (${r.t.failed} not success); idle submit→start p50 ${fmt(lat.at(-1)!.p50)} ms\n`);
    process.stdout.write(`jobs: run ${rep}/${REPS}: ours with JOB_ISOLATION=off ...`);
    const off = await withServer({ env: { ...env, JOB_ISOLATION: 'off' }, label: 'jobs-unisolated' }, async (s) => oursThroughput(s, await login(s.api)));
    unisolated.push(off);
    process.stdout.write(` ${fmt(off.elapsedMs / 1000, 2)} s (${off.failed} not success)\n`);
    process.stdout.write(`jobs: run ${rep}/${REPS}: baseline (spawn /bin/true × ${JOBS}, concurrency ${WORKER_CONCURRENCY}) ...`);
    const b = await baselineSpawn(WORKER_CONCURRENCY);
    base.push(b.elapsedMs);
    baseCpu.push(b.cpuMsPerJob);
    process.stdout.write(` ${fmt(base.at(-1)! / 1000, 2)} s\n`);
  }
  const l = load.stop();
  const oursRate = median(ours.map((r) => JOBS / (r.elapsedMs / 1000)));
  const offRate = median(unisolated.map((r) => JOBS / (r.elapsedMs / 1000)));
  const isolationRatio = oursRate / offRate;
  const baseRate = median(base.map((ms) => JOBS / (ms / 1000)));
  const p50 = median(lat.map((x) => x.p50));
  const p99 = median(lat.map((x) => x.p99));
  const ratio = oursRate / baseRate;
  stopWatchdog();
  return report({
    load: l,
    figure: 'jobs',
    notes: [
      `ours: ${JOBS} × ["true"], ${CLIENTS} REST clients, WORKER_CONCURRENCY=${WORKER_CONCURRENCY}; first submit → last finished_at, s: ${runs(ours.map((r) => r.elapsedMs / 1000), 2)}`,
      `ours: first submit → all terminal seen by polling, s: ${runs(ours.map((r) => r.polledMs / 1000), 2)}; submit phase alone, s: ${runs(ours.map((r) => r.submitMs / 1000), 2)}`,
      `ours under load: created_at → started_at p50/p99 per run, ms: ${ours.map((r) => `${fmt(percentile(r.queueMs, 50), 0)}/${fmt(percentile(r.queueMs, 99), 0)}`).join(', ')}`,
      `ours with JOB_ISOLATION=off: first submit → last finished_at, s: ${runs(unisolated.map((r) => r.elapsedMs / 1000), 2)}; CPU per job (server + helper), ms: ${runs(unisolated.map((r) => r.cpuMsPerJob), 2)}`,
      `baseline: spawn /bin/true × ${JOBS} at concurrency ${WORKER_CONCURRENCY}, s: ${runs(base.map((ms) => ms / 1000), 2)}`,
      `CPU per job of the runner's own processes (ours: server + spawner helper; baseline: the spawning process; jobs excluded), ms: ours ${runs(ours.map((r) => r.cpuMsPerJob), 2)} (server alone ${runs(ours.map((r) => r.serverCpuMsPerJob), 2)}; whole machine, clients and jobs included, ${runs(ours.map((r) => r.machineCpuMsPerJob), 2)}); baseline ${runs(baseCpu, 2)}`,
      `idle submit→start (${LATENCY_SAMPLES} jobs one at a time) client send → started_at p50/p99 per run, ms: ${lat.map((x) => `${fmt(x.p50)}/${fmt(x.p99)}`).join(', ')}`,
      `idle submit→start created_at → started_at p50/p99 per run, ms: ${lat.map((x) => `${fmt(x.cp50)}/${fmt(x.cp99)}`).join(', ')}`,
    ],
    rows: [
      { metric: 'throughput', ours: `${fmt(oursRate)} jobs/s`, baseline: `${fmt(baseRate)} spawns/s`, ratio: pct(ratio), target: '≥ 60% of bare spawn', pass: ratio >= 0.6 },
      { metric: 'throughput, isolation on vs off', ours: `${fmt(oursRate)} jobs/s`, baseline: `${fmt(offRate)} jobs/s (JOB_ISOLATION=off)`, ratio: pct(isolationRatio), target: '≥ 70% of unisolated', pass: isolationRatio >= 0.7 },
      { metric: 'submit→start p50 (idle)', ours: `${fmt(p50)} ms`, baseline: '—', ratio: '—', target: '≤ 5 ms', pass: p50 <= 5 },
      { metric: 'submit→start p99 (idle)', ours: `${fmt(p99)} ms`, baseline: '—', ratio: '—', target: '—', pass: null },
    ],
  });
}

runIfMain(import.meta.url, jobs);
