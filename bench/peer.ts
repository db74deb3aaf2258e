// Figure 5, peer: the same 2,000 trivial jobs through task-spooler (`tsp`,
// Debian's package) with the same number of slots (`tsp -S N`), submitted by
// 50 concurrent `tsp true` clients, on a private TS_SOCKET/TMPDIR; total time
// (first submit → last job finished) vs ours in the same run, isolated (the
// default, the target) and with JOB_ISOLATION=off (as tsp runs jobs).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { JOBS, CLIENTS, oursThroughput, type ThroughputRun } from './jobs.js';
import { REPS, WORKER_CONCURRENCY, runIfMain } from './lib/figure.js';
import { loadSampler } from './lib/machine.js';
import { machineBusyMs, run, watchdog } from './lib/proc.js';
import { report, type FigureReport } from './lib/report.js';
import { login, profileDirFor, tempDir, withServer } from './lib/server.js';
import { fmt, median, nowMs, runs, sleep } from './lib/stats.js';

export function findTsp(): string {
  for (const name of ['tsp', 'ts']) {
    try {
      const path = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      // Debian installs task-spooler as `tsp` (`ts` is moreutils' timestamp filter); check it is the spooler.
      if (path && /task.?spooler|ts-out|Usage: .*\[action\]/i.test(spawnHelp(path))) return path;
    } catch {
      /* not found */
    }
  }
  throw new Error(
    'task-spooler is not installed: the peer figure needs `tsp`.\n' +
      '  Debian/Ubuntu: apt-get install -y task-spooler   (installs /usr/bin/tsp)\n' +
      '  then: npm run bench -- peer',
  );
}

function spawnHelp(path: string): string {
  try {
    return execFileSync(path, ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000, env: { ...process.env, TS_SOCKET: '/nonexistent/ts-probe' } });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
}

interface TspRun {
  elapsedMs: number;
  submitMs: number;
  failed: number;
  /** Busy CPU of the whole machine per job, first submit → all finished (as for ours). */
  machineCpuMsPerJob: number;
}

async function tspRun(tsp: string, slots: number): Promise<TspRun> {
  const dir = tempDir('tsp');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TMPDIR: dir, TS_SOCKET: join(dir, 'socket'), TS_MAXFINISHED: String(JOBS * 2), TS_MAXCONN: String(JOBS + 100) };
  const opts = { env, cwd: dir, timeoutMs: 600_000 };
  try {
    await run('tsp -S', tsp, ['-S', String(slots)], opts); // starts this queue's server
    // Warm-up like ours: a few jobs through the same queue, then clear them.
    await run('tsp warm-up', 'sh', ['-c', `for i in $(seq 20); do "${tsp}" true >/dev/null; done; "${tsp}" -w >/dev/null 2>&1; "${tsp}" -C`], opts);
    await sleep(200);
    const machine0 = machineBusyMs();
    const t0 = nowMs();
    // 50 concurrent clients, like the 50 REST clients of ours; each `tsp true` returns once queued.
    // Each queued job keeps a tsp client process waiting for its turn, holding the inherited stdout:
    // the ids go to a file, so the submit phase ends when the last `tsp true` has queued its job.
    const idsFile = join(dir, 'ids.txt');
    await run('tsp submit', 'sh', ['-c', `seq ${JOBS} | xargs -P ${CLIENTS} -I{} "${tsp}" true > "${idsFile}"`], opts);
    const ids = readFileSync(idsFile, 'utf8').trim().split(/\s+/).map(Number);
    const submitMs = nowMs() - t0;
    if (ids.length !== JOBS) throw new Error(`tsp queued ${ids.length} jobs, expected ${JOBS}`);
    // `tsp -w ID` returns when that job ends (the queue is FIFO, so the last id is among the last to end) ...
    await run('tsp -w', tsp, ['-w', String(Math.max(...ids))], opts).catch(() => '');
    let end = nowMs();
    let machineAtEnd = machineBusyMs();
    // ... then make sure every one has finished (poll the list).
    const deadline = Date.now() + 300_000;
    let failed = 0;
    for (;;) {
      const list = await run('tsp -l', tsp, ['-l'], opts);
      const rows = list.split('\n').slice(1).filter((l) => /^\d+\s/.test(l));
      const finished = rows.filter((l) => /\sfinished\s/.test(l));
      if (finished.length >= JOBS) {
        failed = finished.filter((l) => !/\sfinished\s+\S+\s+0\s/.test(l)).length;
        break;
      }
      if (Date.now() > deadline) throw new Error(`tsp: only ${finished.length}/${JOBS} finished after 300 s`);
      await sleep(50);
      end = nowMs();
      machineAtEnd = machineBusyMs();
    }
    return { elapsedMs: end - t0, submitMs, failed, machineCpuMsPerJob: (machineAtEnd - machine0) / JOBS };
  } finally {
    await run('tsp -K', tsp, ['-K'], { ...opts, timeoutMs: 10_000 }).catch(() => '');
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function peer(): Promise<FigureReport> {
  const tsp = findTsp();
  const stopWatchdog = watchdog('peer', 40 * 60_000);
  const load = loadSampler();
  const env = { WORKER_CONCURRENCY: String(WORKER_CONCURRENCY), DEFAULT_MAX_CONCURRENT_JOBS: '10000' };
  const ours: ThroughputRun[] = [];
  // task-spooler runs jobs as its own user with no isolation: ours the same way too, for a like-for-like figure.
  const unisolated: ThroughputRun[] = [];
  const peerRuns: TspRun[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    process.stdout.write(`peer: run ${rep}/${REPS}: task-spooler (${tsp} -S ${WORKER_CONCURRENCY}) ...`);
    peerRuns.push(await tspRun(tsp, WORKER_CONCURRENCY));
    process.stdout.write(` ${fmt(peerRuns.at(-1)!.elapsedMs / 1000, 2)} s; ours ...`);
    ours.push(
      await withServer({ env, label: 'peer', cpuProfDir: profileDirFor(`peer-${rep}`) }, async (s) => oursThroughput(s, await login(s.api))),
    );
    process.stdout.write(` ${fmt(ours.at(-1)!.elapsedMs / 1000, 2)} s; ours with JOB_ISOLATION=off ...`);
    unisolated.push(await withServer({ env: { ...env, JOB_ISOLATION: 'off' }, label: 'peer-unisolated' }, async (s) => oursThroughput(s, await login(s.api))));
    process.stdout.write(` ${fmt(unisolated.at(-1)!.elapsedMs / 1000, 2)} s\n`);
  }
  const l = load.stop();
  const oursS = median(ours.map((r) => r.elapsedMs / 1000));
  const peerS = median(peerRuns.map((r) => r.elapsedMs / 1000));
  const offS = median(unisolated.map((r) => r.elapsedMs / 1000));
  stopWatchdog();
  return report({
    load: l,
    figure: 'peer',
    notes: [
      `${JOBS} × true, ${CLIENTS} concurrent submitters, ${WORKER_CONCURRENCY} slots (tsp -S ${WORKER_CONCURRENCY} / WORKER_CONCURRENCY=${WORKER_CONCURRENCY})`,
      `ours: first submit → last finished_at, s: ${runs(ours.map((r) => r.elapsedMs / 1000), 2)} (submit phase ${runs(ours.map((r) => r.submitMs / 1000), 2)}; not success: ${ours.map((r) => r.failed).join(', ')})`,
      `ours: CPU per job of the server + its spawner helper (jobs excluded), ms: ${runs(ours.map((r) => r.cpuMsPerJob), 2)}`,
      `ours with JOB_ISOLATION=off: s: ${runs(unisolated.map((r) => r.elapsedMs / 1000), 2)}; CPU per job (server + helper), ms: ${runs(unisolated.map((r) => r.cpuMsPerJob), 2)}; whole machine, ms: ${runs(unisolated.map((r) => r.machineCpuMsPerJob), 2)}`,
      `busy CPU of the whole machine per job (clients, jobs, kernel and whatever else runs), ms: ours ${runs(ours.map((r) => r.machineCpuMsPerJob), 2)}; task-spooler ${runs(peerRuns.map((r) => r.machineCpuMsPerJob), 2)}`,
      `task-spooler: first \`tsp true\` → last job finished, s: ${runs(peerRuns.map((r) => r.elapsedMs / 1000), 2)} (last \`tsp true\` returned after ${runs(peerRuns.map((r) => r.submitMs / 1000), 2)} s: this tsp returns once the queue moves; non-zero: ${peerRuns.map((r) => r.failed).join(', ')})`,
    ],
    rows: [
      { metric: `${JOBS} jobs total time`, ours: `${fmt(oursS, 2)} s`, baseline: `tsp ${fmt(peerS, 2)} s`, ratio: `${fmt(peerS / oursS, 2)}× (tsp/ours)`, target: 'faster than task-spooler', pass: oursS < peerS },
      { metric: `${JOBS} jobs total time, JOB_ISOLATION=off (jobs as task-spooler runs them)`, ours: `${fmt(offS, 2)} s`, baseline: `tsp ${fmt(peerS, 2)} s`, ratio: `${fmt(peerS / offS, 2)}× (tsp/ours)`, target: '—', pass: null },
    ],
  });
}

runIfMain(import.meta.url, peer);
