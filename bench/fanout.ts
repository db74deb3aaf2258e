// Figure 4, fanout: 500 jobLog subscribers (graphql-ws, one WebSocket each,
// spread over admin users so no per-user connection cap is hit) on one job
// that prints its own wall-clock time every 10 ms for 10 s. Delivery latency
// per line and subscriber = client receive time − the time the job printed.
// Baseline: a bare Node process broadcasting the same child's stdout to 500
// plain `ws` sockets, in the same run.
import { join } from 'node:path';
import WebSocket from 'ws';
import { submit } from './lib/api.js';
import { REPS, runIfMain } from './lib/figure.js';
import { postJson } from './lib/http.js';
import { subscribeJobLog, wsConnect, type WsConn } from './lib/live.js';
import { requireLiveFeatures } from './lib/liveCheck.js';
import { loadSampler } from './lib/machine.js';
import { cpuMs, rssSampler, start, watchdog } from './lib/proc.js';
import { report, type FigureReport } from './lib/report.js';
import { BENCH_DIR, freePort, login, profileDirFor, withServer } from './lib/server.js';
import { fmt, median, nowMs, percentile, runs, sleep } from './lib/stats.js';

const SUBSCRIBERS = Number(process.env.BENCH_FANOUT_SUBSCRIBERS ?? 500);
/** The service's default per-user WebSocket cap (src/server/websocket.ts). */
const PER_USER = 50;
const DURATION_MS = 10_000;
const INTERVAL_MS = 10;
/** The job waits this long before ticking, so every subscriber is in place. */
const DELAY_MS = 8_000;
const TICK = join(BENCH_DIR, 'baselines', 'tick.mjs');

interface FanoutRun {
  p50: number;
  p99: number;
  max: number;
  samples: number;
  /** Lines per subscriber: min, max. */
  minLines: number;
  maxLines: number;
  rssGrowthMB?: number;
  /** Server CPU (user + system) per 1,000 lines delivered (subscriber × line), from subscribe to the last one: steady on a shared machine. */
  cpuMsPer1k?: number;
}

/** Latencies of every (subscriber, line) pair, for lines printed after `from`. */
class Collector {
  latencies: number[] = [];
  lines: number[];
  /** Every (subscriber, line) received, early ones included. */
  delivered = 0;
  constructor(n: number, private readonly from: () => number) {
    this.lines = new Array<number>(n).fill(0);
  }
  add(i: number, data: string, receivedAt: number) {
    for (const line of data.split('\n')) {
      if (!line) continue;
      this.delivered++;
      const printed = Number(line);
      if (!Number.isFinite(printed) || printed < this.from()) continue;
      this.lines[i]!++;
      this.latencies.push(receivedAt - printed);
    }
  }
  result(): FanoutRun {
    return {
      p50: percentile(this.latencies, 50),
      p99: percentile(this.latencies, 99),
      max: this.latencies.reduce((m, v) => (v > m ? v : m), -Infinity),
      samples: this.latencies.length,
      minLines: Math.min(...this.lines),
      maxLines: Math.max(...this.lines),
    };
  }
}

async function inBatches<T>(n: number, batch: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, k) => fn(i + k)))));
  return out;
}

async function ours(rep: number): Promise<FanoutRun> {
  return withServer({ label: 'fanout', cpuProfDir: profileDirFor(`fanout-${rep}`) }, async (s) => {
    const admin = await login(s.api);
    // Tokens: one per user, PER_USER sockets each.
    const users = Math.ceil(SUBSCRIBERS / PER_USER);
    const tokens = [admin];
    for (let u = 1; u < users; u++) {
      const email = `bench-fanout-${u}@example.com`;
      const password = `Bench-${u}-password`;
      const res = await postJson(`${s.api}/users`, { email, password, role: 'admin' }, admin);
      if (res.status !== 201) throw new Error(`POST /users: ${res.status} ${res.text.slice(0, 300)}`);
      tokens.push(await login(s.api, email, password));
    }
    const conns: WsConn[] = await inBatches(SUBSCRIBERS, 50, async (i) => {
      const c = wsConnect(s.url, tokens[Math.floor(i / PER_USER)]!);
      await c.connected;
      return c;
    });
    try {
      await sleep(500);
      const rss = rssSampler(s.pid, 50);
      const cpu0 = cpuMs(s.pid) ?? 0;
      const job = await submit(s.api, admin, [process.execPath, TICK, String(DELAY_MS), String(DURATION_MS), String(INTERVAL_MS)], 'fanout');
      let from = Infinity;
      const col = new Collector(SUBSCRIBERS, () => from);
      const subs = conns.map((c, i) => subscribeJobLog(c.client, job.id, (chunk, at) => col.add(i, chunk.data, at)));
      // Lines printed before every subscribe was sent (+1 s for the server to set them up) do not count.
      from = nowMs() + 1000;
      const submittedAt = nowMs();
      if (from > submittedAt + DELAY_MS) process.stderr.write('fanout: subscribing took longer than the job\'s start delay; early lines are skipped\n');
      const bound = DELAY_MS + DURATION_MS + 120_000;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.all(subs.map((x) => x.done)),
          new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`fanout: subscriptions not complete after ${bound / 1000} s`)), bound))),
        ]);
      } finally {
        clearTimeout(timer);
        for (const x of subs) x.stop();
      }
      const { first, peak } = rss.stop();
      const r = col.result();
      const cpu = (cpuMs(s.pid) ?? cpu0) - cpu0;
      return { ...r, rssGrowthMB: (peak - first) / 2 ** 20, cpuMsPer1k: cpu / (col.delivered / 1000) };
    } finally {
      await Promise.all(conns.map((c) => c.dispose()));
    }
  });
}

async function baseline(): Promise<FanoutRun> {
  const port = await freePort();
  let ready!: () => void;
  const listening = new Promise<void>((r) => (ready = r));
  const child = start('baseline ws-broadcast', process.execPath, [join(BENCH_DIR, 'baselines', 'ws-broadcast.mjs'), String(port), String(SUBSCRIBERS), '2000', String(DURATION_MS), String(INTERVAL_MS)], {
    captureStdout: (b) => b.toString().includes('listening') && ready(),
  });
  try {
    await Promise.race([listening, sleep(15_000).then(() => Promise.reject(new Error('baseline ws server did not start')))]);
    const col = new Collector(SUBSCRIBERS, () => 0);
    const closed: Promise<void>[] = [];
    await inBatches(SUBSCRIBERS, 50, async (i) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
      closed.push(new Promise((r) => ws.once('close', () => r())));
      ws.on('message', (m) => {
        const at = nowMs();
        col.add(i, (JSON.parse(m.toString()) as { data: string }).data, at);
      });
      await new Promise<void>((res, rej) => (ws.once('open', () => res()), ws.once('error', rej)));
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('baseline fanout did not finish')), DURATION_MS + 60_000)))]);
    clearTimeout(timer);
    return col.result();
  } finally {
    await child.stop('SIGTERM', 5000);
  }
}

export async function fanout(): Promise<FigureReport> {
  await requireLiveFeatures('fanout');
  const stopWatchdog = watchdog('fanout', 30 * 60_000);
  const load = loadSampler();
  const o: FanoutRun[] = [];
  const b: FanoutRun[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    process.stdout.write(`fanout: run ${rep}/${REPS}: baseline ...`);
    b.push(await baseline());
    process.stdout.write(` p50/p99 ${fmt(b.at(-1)!.p50)}/${fmt(b.at(-1)!.p99)} ms; ours (${SUBSCRIBERS} jobLog subscribers) ...`);
    o.push(await ours(rep));
    process.stdout.write(` p50/p99 ${fmt(o.at(-1)!.p50)}/${fmt(o.at(-1)!.p99)} ms\n`);
  }
  const l = load.stop();
  const p50 = median(o.map((r) => r.p50));
  const p99 = median(o.map((r) => r.p99));
  const bp50 = median(b.map((r) => r.p50));
  const bp99 = median(b.map((r) => r.p99));
  const describe = (rs: FanoutRun[]) =>
    rs.map((r) => `p50 ${fmt(r.p50)} p99 ${fmt(r.p99)} max ${fmt(r.max, 0)} ms, ${r.samples} samples, lines/subscriber ${r.minLines}–${r.maxLines}${r.rssGrowthMB !== undefined ? `, RSS +${fmt(r.rssGrowthMB, 0)} MB` : ''}${r.cpuMsPer1k !== undefined ? `, server CPU ${fmt(r.cpuMsPer1k)} ms per 1,000 lines delivered` : ''}`).join('; ');
  stopWatchdog();
  return report({
    load: l,
    alsoOnTheCores: `the ${SUBSCRIBERS} clients run on the same 2 cores`,
    figure: 'fanout',
    notes: [
      `job: bench/baselines/tick.mjs prints its clock every ${INTERVAL_MS} ms for ${DURATION_MS / 1000} s; latency = client receive − printed time, every (subscriber, line)`,
      `ours (${SUBSCRIBERS} graphql-ws sockets, ${PER_USER} per user): ${describe(o)}`,
      `baseline (bare ws broadcast of the child's stdout): ${describe(b)}`,
      `p99 runs, ms: ours ${runs(o.map((r) => r.p99))}; baseline ${runs(b.map((r) => r.p99))}`,
    ],
    rows: [
      { metric: 'delivery p50', ours: `${fmt(p50)} ms`, baseline: `${fmt(bp50)} ms`, ratio: `${fmt(p50 / bp50, 1)}×`, target: '—', pass: null },
      { metric: 'delivery p99', ours: `${fmt(p99)} ms`, baseline: `${fmt(bp99)} ms`, ratio: `${fmt(p99 / bp99, 1)}×`, target: '≤ 100 ms', pass: p99 <= 100 },
    ],
  });
}

runIfMain(import.meta.url, fanout);
