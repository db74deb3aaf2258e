// Figure cluster: scale-out on PostgreSQL + Redis. One `serve --no-worker`
// API process plus 1 `worker` process, against the same API plus 3 worker
// processes, in the same run under the same load: CLUSTER_JOBS × ["true"]
// from 4 users (generous limits, so only the workers' slots bound the work),
// submitted through REST by 40 clients, counted from the first submit to the
// last finished_at. Total worker slots are the same in both set-ups
// (CLUSTER_SLOTS: 1 × 12 against 3 × 4), so the ratio shows what more worker
// processes and their concurrent claims add or cost, not more slots.
//
// BENCH_CLUSTER_GLOBAL_LOCK_MAIN=<dist/main.js of a build whose claims take
// the one cluster-wide advisory lock> adds "3 workers with the global lock"
// (the API stays the build under test: it never claims).
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { concurrently, submit, waitAllTerminal } from './lib/api.js';
import { createPgDatabase, pgQuery, startRedis, startWorkerProcess, waitWorkersRegistered, WORKER_MAIN, type BenchRedis } from './lib/cluster.js';
import { REPS, pct, runIfMain } from './lib/figure.js';
import { postJson } from './lib/http.js';
import { loadSampler } from './lib/machine.js';
import { cpuMsTree, machineBusyMs, watchdog } from './lib/proc.js';
import { report, type FigureReport } from './lib/report.js';
import { ensureBuilt, login, profileDirFor, startServer, tempDir } from './lib/server.js';
import { fmt, median, nowMs, runs, sleep } from './lib/stats.js';

export const CLUSTER_JOBS = Number(process.env.BENCH_CLUSTER_JOBS ?? 600);
const USERS = 4;
const CLIENTS = 40;
const WARMUP_JOBS_PER_WORKER = 60;
/** Worker slots in all, split evenly over the worker processes. */
const CLUSTER_SLOTS = 12;
const USER_LIMIT = 1000;
const GLOBAL_LOCK_MAIN = process.env.BENCH_CLUSTER_GLOBAL_LOCK_MAIN ? resolve(process.env.BENCH_CLUSTER_GLOBAL_LOCK_MAIN) : null;

interface Variant {
  label: string;
  workers: number;
  main: string;
}

interface ClusterRun {
  elapsedMs: number;
  failed: number;
  /** Measured jobs per worker process, largest first. */
  perWorker: number[];
  /** CPU of the API process tree and of all worker trees (helpers included, jobs gone) per job. */
  apiCpuMsPerJob: number;
  workerCpuMsPerJob: number;
  /** Busy CPU of the whole machine per job: PostgreSQL, Redis, clients and jobs included. */
  machineCpuMsPerJob: number;
}

interface Cluster {
  dbUrl: string;
  api: string;
  apiPid: number;
  adminToken: string;
  tokens: string[];
  env: Record<string, string>;
  /** Jobs submitted so far (waitAllTerminal counts everything in the database). */
  submitted: number;
}

// One database and one API process for the whole figure: the API never
// claims, so every set-up is measured against the same API, interleaved;
// only the worker processes change from run to run.
async function withCluster<T>(redis: BenchRedis, body: (c: Cluster) => Promise<T>): Promise<T> {
  const db = await createPgDatabase('jr_bench_cluster');
  const dataDir = tempDir('cluster');
  mkdirSync(join(dataDir, 'workspace'), { recursive: true });
  // One DATA_DIR for every process, as one host's processes share it (job run directories).
  const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, ...redis.env, DATA_DIR: dataDir, DEFAULT_MAX_CONCURRENT_JOBS: String(USER_LIMIT) };
  let api: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    // The API first: it migrates the database and creates the admin.
    api = await startServer({ noWorker: true, env, label: 'cluster-api', cpuProfDir: profileDirFor('cluster-api') });
    const adminToken = await login(api.api);
    const tokens: string[] = [];
    for (let u = 0; u < USERS; u++) {
      const email = `cluster-${u}@example.com`;
      const password = `Cluster-pass-${u}-x`;
      const res = await postJson(`${api.api}/users`, { email, password, role: 'operator' }, adminToken);
      if (res.status !== 201) throw new Error(`POST /users: ${res.status} ${res.text.slice(0, 300)}`);
      tokens.push(await login(api.api, email, password));
    }
    return await body({ dbUrl: db.url, api: api.api, apiPid: api.pid, adminToken, tokens, env, submitted: 0 });
  } finally {
    await api?.stop();
    await db.drop();
    if (!process.env.BENCH_KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
  }
}

async function clusterRun(c: Cluster, v: Variant, rep: number): Promise<ClusterRun> {
  const workers: ReturnType<typeof startWorkerProcess>[] = [];
  try {
    for (let i = 0; i < v.workers; i++) {
      const profileLabel = `cluster-${rep}-${v.label.replace(/[^a-z0-9]+/gi, '-')}-worker-${i + 1}`;
      workers.push(startWorkerProcess({ ...c.env, WORKER_CONCURRENCY: String(CLUSTER_SLOTS / v.workers) }, `${i + 1}/${v.workers}`, v.main, profileLabel));
    }
    await waitWorkersRegistered(c.dbUrl, workers);
    const submitAs = (i: number) => submit(c.api, c.tokens[i % USERS]!, ['true']);

    // Warm-up: JIT, statement caches, every worker's helper; as many jobs per
    // worker process whatever their number, so three workers do not enter the
    // measurement with colder code than one.
    const warmup = WARMUP_JOBS_PER_WORKER * v.workers;
    await concurrently(warmup, 8, async (i) => void (await submitAs(i)));
    c.submitted += warmup;
    await waitAllTerminal(c.api, c.adminToken, c.submitted, 120_000);
    await sleep(200);

    const pids = [c.apiPid, ...workers.map((w) => w.pid)];
    const cpu0 = pids.map((p) => cpuMsTree(p));
    const machine0 = machineBusyMs();
    const t0 = nowMs();
    await concurrently(CLUSTER_JOBS, CLIENTS, async (i) => void (await submitAs(i)));
    c.submitted += CLUSTER_JOBS;
    await waitAllTerminal(c.api, c.adminToken, c.submitted, 300_000);
    const cpu1 = pids.map((p) => cpuMsTree(p));
    const machine1 = machineBusyMs();

    // The API stamps created_at on this host's clock, as t0 was read.
    const since = new Date(Math.floor(t0));
    const [m] = await pgQuery<{ n: string; failed: string; last: Date }>(
      c.dbUrl,
      `SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE status <> 'success') AS failed, MAX(finished_at) AS last FROM jobs WHERE created_at >= $1`,
      [since],
    );
    if (Number(m!.n) !== CLUSTER_JOBS) throw new Error(`expected ${CLUSTER_JOBS} measured jobs, found ${m!.n}`);
    const shares = await pgQuery<{ n: string }>(c.dbUrl, `SELECT COUNT(*) AS n FROM jobs WHERE created_at >= $1 GROUP BY worker_id ORDER BY n DESC`, [since]);
    const cpu = cpu1.map((x, i) => x - cpu0[i]!);
    return {
      elapsedMs: new Date(m!.last).getTime() - t0,
      failed: Number(m!.failed),
      perWorker: shares.map((s) => Number(s.n)),
      apiCpuMsPerJob: cpu[0]! / CLUSTER_JOBS,
      workerCpuMsPerJob: cpu.slice(1).reduce((a, b) => a + b, 0) / CLUSTER_JOBS,
      machineCpuMsPerJob: (machine1 - machine0) / CLUSTER_JOBS,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

export async function cluster(): Promise<FigureReport> {
  const stopWatchdog = watchdog('cluster', 15 * 60_000);
  await ensureBuilt();
  const redis = await startRedis();
  try {
    const load = loadSampler();
    const variants: Variant[] = [
      { label: '1 worker', workers: 1, main: WORKER_MAIN },
      { label: '3 workers', workers: 3, main: WORKER_MAIN },
      ...(GLOBAL_LOCK_MAIN ? [{ label: '3 workers, global claim lock', workers: 3, main: GLOBAL_LOCK_MAIN }] : []),
    ];
    const results = new Map<string, ClusterRun[]>(variants.map((v) => [v.label, []]));
    await withCluster(redis, async (c) => {
      for (let rep = 1; rep <= REPS; rep++) {
        // Rotated each repetition, so no set-up always runs first (or on the biggest table).
        for (const v of [...variants.slice((rep - 1) % variants.length), ...variants.slice(0, (rep - 1) % variants.length)]) {
          process.stdout.write(`cluster: run ${rep}/${REPS}: API + ${v.label} (${CLUSTER_JOBS} jobs, ${USERS} users, ${CLIENTS} clients, WORKER_CONCURRENCY=${CLUSTER_SLOTS / v.workers} each) ...`);
          const r = await clusterRun(c, v, rep);
          results.get(v.label)!.push(r);
          process.stdout.write(` ${fmt(r.elapsedMs / 1000, 2)} s, ${fmt(CLUSTER_JOBS / (r.elapsedMs / 1000))} jobs/s (${r.failed} not success; per worker ${r.perWorker.join('/')})\n`);
        }
      }
    });
    const l = load.stop();
    const rate = (label: string) => median(results.get(label)!.map((r) => CLUSTER_JOBS / (r.elapsedMs / 1000)));
    const one = rate('1 worker');
    const three = rate('3 workers');
    const ratio = three / one;
    const globalLock = GLOBAL_LOCK_MAIN ? rate('3 workers, global claim lock') : null;
    stopWatchdog();
    return report({
      load: l,
      figure: 'cluster',
      alsoOnTheCores: 'PostgreSQL, Redis and the 40 submitting clients run on the same cores',
      notes: [
        `setup: PostgreSQL on 127.0.0.1:5432 (a fresh database for the figure), Redis: ${redis.describe}; one \`serve --no-worker\` API + N \`worker\` processes of ${WORKER_MAIN}; ${CLUSTER_SLOTS} worker slots in all`,
        ...variants.map((v) => {
          const rs = results.get(v.label)!;
          return `${v.label}${v.main !== WORKER_MAIN ? ` (${v.main})` : ''}: first submit → last finished_at, s: ${runs(rs.map((r) => r.elapsedMs / 1000), 2)}; jobs/s ${runs(rs.map((r) => CLUSTER_JOBS / (r.elapsedMs / 1000)))}; jobs per worker ${rs.map((r) => r.perWorker.join('/')).join(', ')}; CPU per job, ms: API ${runs(rs.map((r) => r.apiCpuMsPerJob), 2)}, workers + helpers ${runs(rs.map((r) => r.workerCpuMsPerJob), 2)}, whole machine ${runs(rs.map((r) => r.machineCpuMsPerJob), 2)}`;
        }),
      ],
      rows: [
        { metric: 'throughput, API + 1 worker', ours: `${fmt(one)} jobs/s`, baseline: '—', ratio: '—', target: '—', pass: null },
        { metric: 'throughput, API + 3 workers vs + 1 worker', ours: `${fmt(three)} jobs/s`, baseline: `${fmt(one)} jobs/s (1 worker)`, ratio: pct(ratio), target: 'no loss (≥ 95%)', pass: ratio >= 0.95 },
        ...(globalLock === null
          ? []
          : [{ metric: 'throughput, 3 workers: per-user claim locks vs the global lock', ours: `${fmt(three)} jobs/s`, baseline: `${fmt(globalLock)} jobs/s (global lock)`, ratio: pct(three / globalLock), target: '—', pass: null }]),
      ],
    });
  } finally {
    await redis.stop();
  }
}

runIfMain(import.meta.url, cluster);
