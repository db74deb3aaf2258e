// Figure 3, logs: one job writes 500 MB of mixed-length text lines; a
// graphql-ws jobLog subscriber (one run) and the SSE follow route (another
// run) each receive all of it. Reports MB/s delivered (job submitted → last
// byte received) and the server's peak RSS growth (VmRSS sampled every
// 50 ms); baseline: a bare Node process reading the same child's stdout.
// Then a flood: a job writing 200 MiB as fast as `yes | head` can, followed
// from seq 0 by 1 and by 20 ordinary graphql-ws clients (createClient, one
// socket each): the server's peak RSS growth, which must not scale with the
// output or the followers.
import { join } from 'node:path';
import { submit } from './lib/api.js';
import { REPS, pct, runIfMain } from './lib/figure.js';
import { followSse, subscribeJobLog, wsConnect } from './lib/live.js';
import { requireLiveFeatures } from './lib/liveCheck.js';
import { loadSampler } from './lib/machine.js';
import { cpuMs, rssSampler, run, watchdog } from './lib/proc.js';
import { report, type FigureReport } from './lib/report.js';
import { BENCH_DIR, login, profileDirFor, withServer } from './lib/server.js';
import { fmt, median, nowMs, runs, sleep } from './lib/stats.js';

const MB = 1024 * 1024;
const BYTES = Number(process.env.BENCH_LOG_BYTES ?? 500 * MB);
const GEN = join(BENCH_DIR, 'baselines', 'gen-lines.mjs');
const RUN_TIMEOUT_MS = 600_000;
const FLOOD_BYTES = Number(process.env.BENCH_FLOOD_BYTES ?? 200 * MB);
// 99 characters and a newline per line.
const FLOOD = ['sh', '-c', `yes ${'0123456789'.repeat(10).slice(0, 99)} | head -c ${FLOOD_BYTES}`];

interface LogRun {
  mbps: number;
  bytes: number;
  rssGrowthMB: number;
  rssPeakMB: number;
  /** Server process CPU (user + system) per MB delivered: steady whatever else the machine runs. */
  cpuMsPerMB: number;
}

async function ours(kind: 'ws' | 'sse', rep: number): Promise<LogRun> {
  const env = { MAX_LOG_BYTES: String(Math.max(600 * MB, Math.ceil(BYTES * 1.2))) };
  return withServer({ env, label: `logs-${kind}`, cpuProfDir: profileDirFor(`logs-${kind}-${rep}`) }, async (s) => {
    const token = await login(s.api);
    const conn = kind === 'ws' ? wsConnect(s.url, token) : null;
    await conn?.connected;
    await sleep(500);
    const rss = rssSampler(s.pid, 50);
    let bytes = 0;
    let lastSeq = 0;
    let gaps = 0;
    const cpu0 = cpuMs(s.pid) ?? 0;
    const t0 = nowMs();
    const job = await submit(s.api, token, [process.execPath, GEN, String(BYTES)], 'logs');
    let done: Promise<unknown>;
    let cancel: () => void;
    if (conn) {
      const sub = subscribeJobLog(conn.client, job.id, (c) => {
        if (c.seq !== lastSeq + 1) gaps++;
        lastSeq = c.seq;
        bytes += Buffer.byteLength(c.data);
      });
      done = sub.done;
      cancel = sub.stop;
    } else {
      const f = followSse(s.api, token, job.id, (text) => void (bytes += Buffer.byteLength(text)));
      done = f.done;
      cancel = f.abort;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([done, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`logs ${kind}: not complete after ${RUN_TIMEOUT_MS / 1000} s (${bytes} bytes so far)`)), RUN_TIMEOUT_MS)))]);
    } finally {
      clearTimeout(timer);
      cancel();
      await conn?.dispose();
    }
    const elapsed = nowMs() - t0;
    const cpu = (cpuMs(s.pid) ?? cpu0) - cpu0;
    const { first, peak } = rss.stop();
    if (bytes !== BYTES) throw new Error(`logs ${kind}: received ${bytes} bytes, expected ${BYTES}${gaps ? ` (${gaps} seq gaps)` : ''}`);
    return { mbps: bytes / MB / (elapsed / 1000), bytes, rssGrowthMB: (peak - first) / MB, rssPeakMB: peak / MB, cpuMsPerMB: cpu / (bytes / MB) };
  });
}

interface FloodRun {
  /** MB/s per follower, submit → its last byte. */
  mbps: number;
  rssGrowthMB: number;
}

/** `followers` graphql-ws clients follow the flood job from seq 0; one of them keeps the text, as a viewer would. */
async function flood(followers: number, rep: number): Promise<FloodRun> {
  const env = { MAX_LOG_BYTES: String(Math.ceil(FLOOD_BYTES * 1.5)) };
  return withServer({ env, label: `logs-flood-${followers}`, cpuProfDir: profileDirFor(`logs-flood-${followers}-${rep}`) }, async (s) => {
    const token = await login(s.api);
    const conns = Array.from({ length: followers }, () => wsConnect(s.url, token));
    await Promise.all(conns.map((c) => c.connected));
    await sleep(500);
    const rss = rssSampler(s.pid, 50);
    const t0 = nowMs();
    const job = await submit(s.api, token, FLOOD, 'flood');
    const subs = conns.map((c, i) => {
      let bytes = 0;
      let text = '';
      const sub = subscribeJobLog(c.client, job.id, (chunk) => {
        bytes += chunk.data.length;
        if (i === 0) text += chunk.data;
      });
      const done = sub.done.then(() => {
        if (bytes !== FLOOD_BYTES || (i === 0 && text.length !== FLOOD_BYTES)) throw new Error(`flood: follower ${i} received ${bytes} bytes, expected ${FLOOD_BYTES}`);
        return nowMs() - t0;
      });
      return { done, stop: sub.stop };
    });
    let timer: NodeJS.Timeout | undefined;
    let elapsed: number[];
    try {
      elapsed = await Promise.race([
        Promise.all(subs.map((x) => x.done)),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`flood x${followers}: not complete after ${RUN_TIMEOUT_MS / 1000} s`)), RUN_TIMEOUT_MS))),
      ]);
    } finally {
      clearTimeout(timer);
      for (const x of subs) x.stop();
      await Promise.all(conns.map((c) => c.dispose()));
    }
    const { first, peak } = rss.stop();
    return { mbps: FLOOD_BYTES / MB / (median(elapsed) / 1000), rssGrowthMB: (peak - first) / MB };
  });
}

async function baseline(): Promise<number> {
  const out = await run('baseline read-child', process.execPath, [join(BENCH_DIR, 'baselines', 'read-child.mjs'), String(BYTES)], { timeoutMs: RUN_TIMEOUT_MS });
  const r = JSON.parse(out) as { bytes: number; elapsedMs: number };
  if (r.bytes !== BYTES) throw new Error(`baseline read ${r.bytes} bytes, expected ${BYTES}`);
  return r.bytes / MB / (r.elapsedMs / 1000);
}

export async function logs(): Promise<FigureReport> {
  await requireLiveFeatures('logs');
  const stopWatchdog = watchdog('logs', 60 * 60_000);
  const load = loadSampler();
  const ws: LogRun[] = [];
  const sse: LogRun[] = [];
  const base: number[] = [];
  const flood1: FloodRun[] = [];
  const flood20: FloodRun[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    process.stdout.write(`logs: run ${rep}/${REPS}: baseline ...`);
    base.push(await baseline());
    process.stdout.write(` ${fmt(base.at(-1)!)} MB/s; graphql-ws ...`);
    ws.push(await ours('ws', rep));
    process.stdout.write(` ${fmt(ws.at(-1)!.mbps)} MB/s (RSS +${fmt(ws.at(-1)!.rssGrowthMB, 0)} MB); SSE ...`);
    sse.push(await ours('sse', rep));
    process.stdout.write(` ${fmt(sse.at(-1)!.mbps)} MB/s (RSS +${fmt(sse.at(-1)!.rssGrowthMB, 0)} MB); flood, 1 follower ...`);
    flood1.push(await flood(1, rep));
    process.stdout.write(` RSS +${fmt(flood1.at(-1)!.rssGrowthMB, 0)} MB; 20 followers ...`);
    flood20.push(await flood(20, rep));
    process.stdout.write(` RSS +${fmt(flood20.at(-1)!.rssGrowthMB, 0)} MB\n`);
  }
  const l = load.stop();
  const baseM = median(base);
  const wsM = median(ws.map((r) => r.mbps));
  const sseM = median(sse.map((r) => r.mbps));
  const wsRss = median(ws.map((r) => r.rssGrowthMB));
  const sseRss = median(sse.map((r) => r.rssGrowthMB));
  const flood1Rss = median(flood1.map((r) => r.rssGrowthMB));
  const flood20Rss = median(flood20.map((r) => r.rssGrowthMB));
  stopWatchdog();
  return report({
    load: l,
    figure: 'logs',
    notes: [
      `${fmt(BYTES / MB, 0)} MB of mixed-length lines (bench/baselines/gen-lines.mjs); MB/s = bytes received / (submit → last byte); MB = 2^20 bytes`,
      `graphql-ws jobLog, MB/s: ${runs(ws.map((r) => r.mbps))}; RSS growth, MB: ${runs(ws.map((r) => r.rssGrowthMB), 0)} (peak ${runs(ws.map((r) => r.rssPeakMB), 0)}); server CPU ms/MB: ${runs(ws.map((r) => r.cpuMsPerMB))}`,
      `SSE logs/stream,   MB/s: ${runs(sse.map((r) => r.mbps))}; RSS growth, MB: ${runs(sse.map((r) => r.rssGrowthMB), 0)} (peak ${runs(sse.map((r) => r.rssPeakMB), 0)}); server CPU ms/MB: ${runs(sse.map((r) => r.cpuMsPerMB))}`,
      `baseline (bare Node reading the child's stdout), MB/s: ${runs(base)}`,
      `flood (${fmt(FLOOD_BYTES / MB, 0)} MiB from yes | head), 1 graphql-ws follower: RSS growth, MB: ${runs(flood1.map((r) => r.rssGrowthMB), 0)}; MB/s: ${runs(flood1.map((r) => r.mbps))}`,
      `flood, 20 graphql-ws followers (one socket each): RSS growth, MB: ${runs(flood20.map((r) => r.rssGrowthMB), 0)}; MB/s per follower (median): ${runs(flood20.map((r) => r.mbps))}`,
    ],
    rows: [
      { metric: 'graphql-ws MB/s', ours: `${fmt(wsM)} MB/s`, baseline: `${fmt(baseM)} MB/s`, ratio: pct(wsM / baseM), target: '≥ 50 MB/s', pass: wsM >= 50 },
      { metric: 'SSE MB/s', ours: `${fmt(sseM)} MB/s`, baseline: `${fmt(baseM)} MB/s`, ratio: pct(sseM / baseM), target: '≥ 50 MB/s', pass: sseM >= 50 },
      { metric: 'peak RSS growth (ws)', ours: `${fmt(wsRss, 0)} MB`, baseline: '—', ratio: '—', target: '≤ 100 MB', pass: wsRss <= 100 },
      { metric: 'peak RSS growth (SSE)', ours: `${fmt(sseRss, 0)} MB`, baseline: '—', ratio: '—', target: '≤ 100 MB', pass: sseRss <= 100 },
      { metric: 'peak RSS growth, flood, 1 ws follower', ours: `${fmt(flood1Rss, 0)} MB`, baseline: '—', ratio: '—', target: '≤ 100 MB', pass: flood1Rss <= 100 },
      { metric: 'peak RSS growth, flood, 20 ws followers', ours: `${fmt(flood20Rss, 0)} MB`, baseline: '—', ratio: '—', target: '≤ 200 MB', pass: flood20Rss <= 200 },
    ],
  });
}

runIfMain(import.meta.url, logs);
