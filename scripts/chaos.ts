// The randomized fault run of issue #14 (`npm run chaos`; .ci/run runs it
// after `npm test` with a random seed).
//
// Set-up: a fresh PostgreSQL database (chaos_<pid>_<hex>, dropped at the end)
// and a Redis prefix of its own; 2 API processes (`serve --no-worker`) and 3
// workers, real `node dist/main.js` children, each reaching PostgreSQL and
// Redis only through TCP proxies of this run, and each worker on a "host" of
// its own (a UTS namespace with its own hostname), HEARTBEAT_SECONDS=1; 3-4
// operators with caps 1-3 made through REST by the admin.
// Load: N jobs (default 500) submitted over the fault phase through a random
// API; a failed submit is retried on the other API with a new marker
// (`<job>.<try>`: name and CHAOS_JOB), so a duplicate made by the client's
// retry is told from one the service made. Each job is `sh -c` printing
// several lines over 0.2-3 s (one in 20: 5-9 s), then "done <marker>", with
// env CHAOS_JOB and CHAOS_USER. A sample (default 50) is followed by
// graphql-ws jobUpdated and jobLog subscriptions, resumed on the other API
// (jobLog with after = last seq) when a socket closes or an error arrives.
// Faults (random schedule over --duration, default 60 s): kill -9 of a
// worker, of a spawner helper, of an API (each restarted); SIGSTOP of a
// worker past its lease; a process's PostgreSQL or Redis connections cut or
// silently held; pg_terminate_backend on every service connection; Redis cut
// for all. /proc is sampled every 100 ms for the jobs' processes.
// Then: faults restored, a bounded wait until nothing is pending or running,
// and the invariants:
//   0. the run did real work (half the jobs succeeded, processes were seen)
//   1. every job in exactly one terminal state (and one job per submit request)
//   2. no job started twice in one attempt, no two attempts overlapping, no
//      process alive after its job's outcome was recorded
//   3. per-user caps never exceeded (process samples)
//   4. every stored log has seqs 1..n (or an explicit gap marker); a job
//      recorded success has every line it printed
//   5. every subscription opened completed, with the job's final status and
//      every stored chunk
//   6. no process of any (terminal) job left on the host
// and a report (not failing): failures by error, failures explained by a
// fault on the job's worker, jobs failed without ever starting, suspicious
// failures, client-retry duplicates, subscription errors, unexpected process
// exits, orphaned helpers, service log errors.
//
//   npm run chaos                          # random seed (printed first)
//   npm run chaos -- --seed 12345          # the same choices again (CHAOS_SEED too)
//   npm run chaos -- --seed 12345 --plan   # that seed's fault schedule only
//   npm run chaos -- --duration 30 --jobs 200 --subs 20 --settle 120 --keep --verbose --same-host
//   CHAOS_MAIN=/path/to/other/dist/main.js npm run chaos   # another build
//
// Every random choice comes from PRNG streams derived from the seed (users,
// job shapes and timing, fault schedule, subscription sample); which process
// a fault hits is resolved when it fires (the busiest worker for a pause or
// a helper kill), and the interleaving with the service's own timing is not
// replayable. Runs as root (it reads every process's environ). Exit code 0
// only if every invariant holds, 1 if one failed, 2 if the run aborted.
// Everything it started (processes, proxies, database, temporary directory)
// is removed at the end, on failure and on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import pg from 'pg';
import WebSocket from 'ws';
import { childrenOf, createScanner, exeOf, readStat, type ProcInfo } from './chaos/procs.js';
import { startProxy, type TcpProxy as Proxy } from '../test/chaos/tcpProxy.js';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => existsSync(f)) ?? null;
const UNSHARE = process.getuid?.() === 0 ? (['/usr/bin/unshare', '/bin/unshare'].find((f) => existsSync(f)) ?? null) : null;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// CHAOS_MAIN: run another build of the service (e.g. an older commit's dist/main.js, to see the invariants fail).
const MAIN = process.env.CHAOS_MAIN ? resolve(process.env.CHAOS_MAIN) : join(ROOT, 'dist', 'main.js');
const SERVICE_ROOT = dirname(dirname(MAIN));

// ---------------------------------------------------------------- options

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string' },
    duration: { type: 'string', default: '60' },
    jobs: { type: 'string', default: '500' },
    subs: { type: 'string', default: '50' },
    settle: { type: 'string', default: '180' },
    keep: { type: 'boolean', default: false },
    'same-host': { type: 'boolean', default: false },
    plan: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

const seedText = opts.seed ?? process.env.CHAOS_SEED;
const SEED = seedText !== undefined && seedText !== '' ? Number(seedText) : randomBytes(4).readUInt32BE(0) % 1_000_000_000;
if (!Number.isSafeInteger(SEED) || SEED < 0) {
  console.error(`--seed must be a non-negative integer (got ${seedText})`);
  process.exit(2);
}
const DURATION_S = Number(opts.duration);
const JOBS = Number(opts.jobs);
const SUBS = Math.min(Number(opts.subs), JOBS);
const SETTLE_S = Number(opts.settle);
const REPLAY = `npm run chaos -- --seed ${SEED}${DURATION_S !== 60 ? ` --duration ${DURATION_S}` : ''}${JOBS !== 500 ? ` --jobs ${JOBS}` : ''}${SUBS !== 50 ? ` --subs ${opts.subs}` : ''}`;
console.log(`chaos seed ${SEED}; replay: ${REPLAY}`);

const HEARTBEAT_SECONDS = 1;
const WORKER_CONCURRENCY = 4;
const PG_ADMIN_URL = process.env.CHAOS_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_HOST = '127.0.0.1';
const REDIS_PORT = 6379;
const ADMIN_EMAIL = 'admin@example.com';
const ADMIN_PASSWORD = 'ChaosAdmin-' + randomBytes(6).toString('hex');
const JWT_SECRET = randomBytes(32).toString('hex');
const RUN = `c${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
const MARKER_PREFIX = `${RUN}-`;
const REDIS_PREFIX = `chaos_${RUN}`;

// ---------------------------------------------------------------- PRNG

function mulberry32(a: number): () => number {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  private next: () => number;
  constructor(seed: number, stream: string) {
    let h = 2166136261 ^ seed;
    for (const ch of `${seed}:${stream}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
    this.next = mulberry32(h >>> 0);
  }
  float(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  weighted<T extends string>(weights: Record<T, number>): T {
    const entries = Object.entries(weights) as Array<[T, number]>;
    let r = this.next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) if ((r -= w) < 0) return k;
    return entries[entries.length - 1][0];
  }
  sample(n: number, k: number): Set<number> {
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.next() * (n - i));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return new Set(idx.slice(0, k));
  }
}

// ---------------------------------------------------------------- output

const T0 = Date.now();
let phaseStart = T0;
// Times are seconds since the fault phase began (set-up: since the run began), as in the failure reports.
const elapsed = () => ((Date.now() - phaseStart) / 1000).toFixed(1).padStart(6);
function say(msg: string): void {
  process.stdout.write(`[${elapsed()}s] ${msg}\n`);
}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- resources (cleaned up whatever happens)

const tmp = mkdtempSync(join(tmpdir(), 'jobrunner-chaos-'));
const dbName = `chaos_${process.pid}_${randomBytes(4).toString('hex')}`;
let dbCreated = false;
let harnessPool: pg.Pool | null = null;
const proxies: Proxy[] = [];
const timers = new Set<NodeJS.Timeout>();
const helperPids = new Map<number, string>(); // pid -> starttime of spawner helpers seen under our workers
let stopping = false;

function later(ms: number, fn: () => void): NodeJS.Timeout {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
  return t;
}

// ---------------------------------------------------------------- service processes

type Kind = 'api' | 'worker';

class Member {
  child: ChildProcess | null = null;
  pid = 0;
  state: 'up' | 'down' | 'stopped' = 'down';
  /** A fault holds this member (killed, paused or cut) until it is restored. */
  busy = false;
  expectExit = false;
  starts = 0;
  /** Every pid this member had, to map a job's worker_id back to it. */
  readonly pids: number[] = [];
  unexpectedExits: string[] = [];
  /** API: answered HTTP at the last poll. */
  listening = false;
  readonly log: string;
  readonly dataDir: string;
  constructor(
    readonly name: string,
    readonly kind: Kind,
    readonly port: number,
    readonly pgProxy: Proxy,
    readonly redisProxy: Proxy,
    readonly dbUrl: string,
  ) {
    this.log = join(tmp, `${name}.log`);
    // One DATA_DIR for all, as processes on one host share it: the API picks a
    // job's run directory (DATA_DIR/runs/<id>) at submit, a worker makes it.
    this.dataDir = join(tmp, 'data');
    mkdirSync(join(this.dataDir, 'workspace'), { recursive: true, mode: 0o700 });
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  env(): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      LANG: 'C.UTF-8',
      ...(this.kind === 'api' ? { PORT: String(this.port), HOST: '127.0.0.1' } : {}),
      DATA_DIR: this.dataDir,
      DATABASE_URL: this.pgProxy.via(this.dbUrl),
      REDIS_URL: `redis://127.0.0.1:${this.redisProxy.port}`,
      REDIS_PREFIX,
      JWT_SECRET,
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      LOG_LEVEL: 'warn',
      HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
      KILL_GRACE_SECONDS: '1',
      SHUTDOWN_GRACE_SECONDS: '3',
      WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
      DEFAULT_MAX_CONCURRENT_JOBS: '4',
    };
  }
  start(): void {
    const fd = openSync(this.log, 'a');
    const args = [process.execPath, MAIN, ...(this.kind === 'api' ? ['serve', '--no-worker'] : ['worker'])];
    // Its own process group (a Ctrl-C reaches only this run, which stops the
    // services itself) and, where setpriv exists, killed if this run dies
    // without cleaning up (setpriv execs node: same pid).
    let argv = SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', ...args] : args;
    // Each worker on a host of its own (a UTS namespace with its own hostname; exec keeps the pid), as
    // in a real cluster: a worker cannot then kill another's jobs as "same host", only leases fence them.
    if (this.kind === 'worker' && UNSHARE && !opts['same-host']) argv = [UNSHARE, '--uts', '--', '/bin/sh', '-c', 'hostname "$0" && exec "$@"', `${RUN}-${this.name}`, ...argv];
    const [file, ...rest] = argv;
    const child = spawn(file, rest, { cwd: SERVICE_ROOT, env: this.env(), stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    this.child = child;
    this.pid = child.pid ?? 0;
    this.pids.push(this.pid);
    this.state = 'up';
    this.expectExit = false;
    this.starts++;
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.state = 'down';
      if (this.expectExit || stopping) return;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      this.unexpectedExits.push(`${elapsed().trim()}s ${how}`);
      say(`!! ${this.name} (pid ${child.pid}) exited on its own (${how}): restarting in 1 s; last log line: ${lastLogLine(this.log)}`);
      later(1000, () => {
        if (!stopping && this.state === 'down' && !this.busy) this.start();
      });
    });
  }
  kill(signal: NodeJS.Signals): void {
    if (!this.child || !this.pid) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.expectExit = true;
    try {
      process.kill(this.pid, signal);
    } catch {
      /* gone */
    }
    if (signal === 'SIGSTOP') this.state = 'stopped';
    if (signal === 'SIGCONT' && this.state === 'stopped') this.state = 'up';
  }
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expectExit = true;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    this.kill('SIGCONT');
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), 4000);
    await Promise.race([exited, sleep(8000)]);
    clearTimeout(t);
  }
}

function lastLogLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    return (lines[lines.length - 1] ?? '').slice(0, 300);
  } catch {
    return '(no log)';
  }
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

async function http(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 10_000) });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, text };
}

async function waitHealthy(m: Member, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (m.state === 'down' && !m.child) throw new Error(`${m.name} exited during start-up: ${lastLogLine(m.log)}`);
    try {
      const r = await http(`${m.url}/api/v1/health`, { timeoutMs: 2000 });
      if (r.status === 200) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${m.name} did not answer /health within ${ms / 1000} s: ${lastLogLine(m.log)}`);
    await sleep(200);
  }
}

async function login(m: Member, email: string, password: string): Promise<string> {
  for (let i = 0; ; i++) {
    const r = await http(`${m.url}/api/v1/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: email, password }).toString(),
    });
    if (r.status === 200) return r.body.access_token as string;
    if (i >= 5) throw new Error(`login ${email}: ${r.status} ${r.text.slice(0, 200)}`);
    await sleep(500);
  }
}

// ---------------------------------------------------------------- run state

interface User {
  name: string;
  email: string;
  id: string;
  cap: number;
  token: string;
}

interface JobSpec {
  index: number;
  marker: string;
  at: number; // ms into the fault phase
  user: number;
  api: number;
  lines: number;
  stepSeconds: number;
  subscribe: boolean;
  subApi: number;
}

interface SubmitRecord {
  spec: JobSpec;
  tries: string[];
  id: string | null;
  /** The marker of the try that was accepted. */
  marker: string | null;
  acceptedAt: number | null;
  done: boolean;
}

interface SubOp {
  kind: 'updated' | 'log';
  marker: string;
  jobId: string;
  opened: number;
  completed: boolean;
  completedAt: number | null;
  resumes: number;
  errors: string[];
  statuses: string[];
  lastSeq: number;
  seqs: number[];
  anomalies: string[];
  /** GraphQL errors the server sent (as opposed to a socket that closed because its API died). */
  errorResults: string[];
  api: number;
}

const members: Member[] = [];
const apis = () => members.filter((m) => m.kind === 'api');
const workers = () => members.filter((m) => m.kind === 'worker');
const users: User[] = [];
const submits: SubmitRecord[] = [];
const subOps: SubOp[] = [];
const faultLog: Array<{ at: number; ms: number; kind: string; target: string; detail: string }> = [];

// Process samples
interface TreeInfo {
  marker: string;
  user: string;
  tree: string;
  first: number;
  last: number;
  worker: string;
  pids: Set<number>;
}
const trees = new Map<string, TreeInfo>(); // key marker|tree
interface Episode {
  what: string;
  first: number;
  last: number;
  samples: number;
  detail: string;
}
const capEpisodes = new Map<string, Episode>();
const overlapEpisodes = new Map<string, Episode>();
let samples = 0;
let maxSampleGap = 0;
let lastSampleAt = 0;
let maxLivePerUser = new Map<string, number>();
let liveByWorker = new Map<string, { trees: number; long: number }>();
/** Markers of the long jobs (5-9 s). */
const longMarkers = new Set<string>();

// ---------------------------------------------------------------- process sampler

const scanner = createScanner(MARKER_PREFIX);

function workerOf(pid: number, all: Map<number, ProcInfo>): string {
  const byPid = new Map(workers().filter((w) => w.pid).map((w) => [w.pid, w.name]));
  let p = all.get(pid);
  for (let hops = 0; p && hops < 32; hops++) {
    const w = byPid.get(p.ppid);
    if (w) return w;
    if (p.ppid <= 1) return 'orphan (reparented to pid 1)';
    p = all.get(p.ppid);
  }
  return 'unknown';
}

function sample(): void {
  const now = Date.now();
  if (lastSampleAt) maxSampleGap = Math.max(maxSampleGap, now - lastSampleAt);
  lastSampleAt = now;
  samples++;
  const { procs, all } = scanner.scan();
  const byMarker = new Map<string, Set<string>>();
  const byUser = new Map<string, Set<string>>();
  for (const p of procs) {
    let ts = byMarker.get(p.marker);
    if (!ts) byMarker.set(p.marker, (ts = new Set()));
    ts.add(p.tree);
    let ms = byUser.get(p.user);
    if (!ms) byUser.set(p.user, (ms = new Set()));
    ms.add(p.marker);
    const key = `${p.marker}|${p.tree}`;
    let t = trees.get(key);
    if (!t) trees.set(key, (t = { marker: p.marker, user: p.user, tree: p.tree, first: now, last: now, worker: workerOf(p.pid, all), pids: new Set() }));
    t.last = now;
    t.pids.add(p.pid);
  }
  // What each worker runs now (for faults that pick the busiest worker).
  liveByWorker = new Map();
  for (const t of trees.values()) {
    if (t.last !== now) continue;
    const l = liveByWorker.get(t.worker) ?? { trees: 0, long: 0 };
    l.trees++;
    if (longMarkers.has(baseOf(t.marker))) l.long++;
    liveByWorker.set(t.worker, l);
  }
  for (const [user, markers] of byUser) {
    maxLivePerUser.set(user, Math.max(maxLivePerUser.get(user) ?? 0, markers.size));
    const u = users.find((x) => x.name === user);
    if (u && markers.size > u.cap) {
      const list = [...markers].sort().join(',');
      const key = `${user}|${list}`;
      const e = capEpisodes.get(key);
      if (e && now - e.last < 1000) {
        e.last = now;
        e.samples++;
      } else capEpisodes.set(key, { what: user, first: now, last: now, samples: 1, detail: `${user} (cap ${u.cap}) had ${markers.size} jobs alive: ${list}` });
    }
  }
  for (const [marker, ts] of byMarker) {
    if (ts.size > 1) {
      const key = `${marker}|${[...ts].sort().join(',')}`;
      const e = overlapEpisodes.get(key);
      if (e && now - e.last < 1000) {
        e.last = now;
        e.samples++;
      } else overlapEpisodes.set(key, { what: marker, first: now, last: now, samples: 1, detail: `${marker}: ${ts.size} process trees alive at once (${[...ts].join(', ')})` });
    }
  }
  // Remember our workers' spawner helpers so they can be cleaned up after a worker dies.
  if (samples % 10 === 0) {
    for (const w of workers()) {
      if (!w.pid) continue;
      for (const c of childrenOf(w.pid)) {
        const st = readStat(c);
        if (st) helperPids.set(c, st.starttime);
      }
    }
  }
}

function markedProcsNow(): Array<{ pid: number; marker: string; comm: string; ppid: number }> {
  return scanner.scan().procs.map((p) => ({ pid: p.pid, marker: p.marker, comm: p.comm, ppid: p.ppid }));
}

// ---------------------------------------------------------------- load

function jobCommand(spec: JobSpec): string[] {
  // Prints several lines over the job's duration (some on stderr), then "done <marker>" as its last line.
  const script =
    `i=1; while [ $i -le ${spec.lines} ]; do echo "$CHAOS_JOB out $i/${spec.lines}"; ` +
    `if [ $((i % 3)) -eq 0 ]; then echo "$CHAOS_JOB err $i" >&2; fi; sleep ${spec.stepSeconds.toFixed(2)}; i=$((i+1)); done; echo "done $CHAOS_JOB"`;
  return ['sh', '-c', script];
}

/** Each submit request carries its own marker, `<job marker>.<try>`, so a job created by a client retry is told apart from the first. */
const baseOf = (name: string) => name.replace(/\.\d+$/, '');

function expectedLines(spec: JobSpec, marker: string): { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  for (let i = 1; i <= spec.lines; i++) {
    stdout.push(`${marker} out ${i}/${spec.lines}`);
    if (i % 3 === 0) stderr.push(`${marker} err ${i}`);
  }
  stdout.push(`done ${marker}`);
  return { stdout, stderr };
}

async function submitOne(rec: SubmitRecord): Promise<void> {
  const { spec } = rec;
  const user = users[spec.user];
  const list = apis();
  for (let attempt = 0; attempt < 12 && !stopping; attempt++) {
    const api = list[(spec.api + attempt) % list.length];
    const marker = `${spec.marker}.${attempt + 1}`;
    const body = JSON.stringify({ name: marker, command: jobCommand(spec), env: { CHAOS_JOB: marker, CHAOS_USER: user.name } });
    try {
      const r = await http(`${api.url}/api/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
        body,
        timeoutMs: 10_000,
      });
      if (r.status === 202) {
        rec.tries.push(`${api.name}:202`);
        rec.id = r.body.id;
        rec.marker = marker;
        rec.acceptedAt = Date.now();
        break;
      }
      rec.tries.push(`${api.name}:${r.status}${typeof r.body === 'object' && r.body?.detail ? ` ${String(r.body.detail).slice(0, 80)}` : ''}`);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      rec.tries.push(`${api.name}:${e.cause?.code ?? e.name}`);
    }
    await sleep(Math.min(300 * (attempt + 1), 2000));
  }
  rec.done = true;
  if (rec.id && rec.spec.subscribe && !stopping) {
    followJob(rec);
  }
}

// ---------------------------------------------------------------- subscriptions

const JOB_UPDATED = 'subscription ($id: ID!) { jobUpdated(id: $id) { id status } }';
const JOB_LOG = 'subscription ($id: ID!, $after: Int) { jobLog(id: $id, after: $after) { seq stream } }';

const wsClients = new Set<Client>();

/** Follows a job with jobUpdated and jobLog: one graphql-ws socket per API for both (opened lazily, reopened after its API died). */
function followJob(rec: SubmitRecord): void {
  const token = users[rec.spec.user].token;
  const clients: Array<Client | null> = [null, null];
  const clientFor = (i: number): Client => {
    let c = clients[i];
    if (!c) {
      c = createClient({
        url: `ws://127.0.0.1:${apis()[i].port}/graphql`,
        webSocketImpl: WebSocket,
        lazy: true,
        lazyCloseTimeout: 1000,
        retryAttempts: 0,
        shouldRetry: () => false,
        keepAlive: 5000,
        connectionParams: { authorization: `Bearer ${token}` },
      });
      clients[i] = c;
      wsClients.add(c);
    }
    return c;
  };
  void Promise.all([follow(rec, 'updated', clientFor), follow(rec, 'log', clientFor)]).then(() => {
    for (const c of clients) {
      if (!c) continue;
      wsClients.delete(c);
      void c.dispose();
    }
  });
}

async function follow(rec: SubmitRecord, kind: SubOp['kind'], clientFor: (api: number) => Client): Promise<void> {
  const op: SubOp = {
    kind, marker: rec.marker!, jobId: rec.id!, opened: Date.now(), completed: false, completedAt: null,
    resumes: 0, errors: [], statuses: [], lastSeq: 0, seqs: [], anomalies: [], errorResults: [], api: rec.spec.subApi,
  };
  subOps.push(op);
  {
    while (!stopping && !op.completed) {
      const api = apis()[op.api];
      let errorResults: string[] = [];
      const outcome = await new Promise<string>((resolveOutcome) => {
        const client = clientFor(op.api);
        const variables = kind === 'log' ? { id: op.jobId, after: op.lastSeq } : { id: op.jobId };
        client.subscribe<Record<string, any>>(
          { query: kind === 'log' ? JOB_LOG : JOB_UPDATED, variables },
          {
            next: (result) => {
              if (result.errors) errorResults.push(...result.errors.map((e) => `${api.name}: ${e.message}`));
              const v = result.data && Object.values(result.data)[0];
              if (!v) return;
              if (kind === 'updated') op.statuses.push(String(v.status).toLowerCase());
              else {
                const seq = Number(v.seq);
                if (seq <= op.lastSeq) op.anomalies.push(`seq ${seq} after ${op.lastSeq} (duplicate or out of order)`);
                else if (seq !== op.lastSeq + 1) op.anomalies.push(`seq ${seq} after ${op.lastSeq} (skipped ${seq - op.lastSeq - 1})`);
                op.seqs.push(seq);
                op.lastSeq = Math.max(op.lastSeq, seq);
              }
            },
            error: (err) => {
              const e = err as { code?: number; reason?: string; message?: string };
              resolveOutcome(`error ${api.name}: ${Array.isArray(err) ? err.map((x) => x.message).join('; ') : e.code !== undefined ? `close ${e.code} ${e.reason ?? ''}` : (e.message ?? String(err))}`);
            },
            complete: () => {
              // Completed after an error result, or jobUpdated without a terminal status: not the end a client can trust; it resubscribes.
              const last = op.statuses[op.statuses.length - 1];
              if (errorResults.length) resolveOutcome(`completed after an error result: ${errorResults[errorResults.length - 1]}`);
              else if (kind === 'updated' && !['success', 'failed', 'canceled'].includes(last ?? '')) resolveOutcome(`${api.name}: completed with status ${last ?? 'none'}`);
              else resolveOutcome('complete');
            },
          },
        );
      });
      if (outcome === 'complete') {
        op.completed = true;
        op.completedAt = Date.now();
        break;
      }
      if (stopping) break;
      if (errorResults.length) op.errorResults.push(...errorResults);
      op.errors.push(outcome);
      op.resumes++;
      op.api = 1 - op.api;
      await sleep(300);
    }
  }
}

// ---------------------------------------------------------------- faults

type FaultKind = 'kill-worker' | 'kill-helper' | 'kill-api' | 'stop-worker' | 'pg-cut' | 'pg-hold' | 'pg-terminate' | 'redis-cut' | 'redis-hold' | 'redis-cut-all';
const FAULT_WEIGHTS: Record<FaultKind, number> = {
  'kill-worker': 2,
  'kill-helper': 2,
  'kill-api': 1.5,
  'stop-worker': 1.5,
  'pg-cut': 1.5,
  'pg-hold': 0.7,
  'pg-terminate': 1,
  'redis-cut': 1.5,
  'redis-hold': 0.7,
  'redis-cut-all': 1,
};

interface Fault {
  at: number;
  kind: FaultKind;
  target: number;
  ms: number;
}

function planFaults(rng: Rng, durationMs: number): Fault[] {
  const out: Fault[] = [];
  let at = rng.float(1500, 3500);
  while (at < durationMs - 2000) {
    const kind = rng.weighted(FAULT_WEIGHTS);
    const ms =
      kind === 'stop-worker' ? rng.float(4500, 8000)
      : kind === 'kill-worker' || kind === 'kill-api' ? rng.float(800, 3000)
      : kind === 'pg-cut' || kind === 'pg-hold' ? rng.float(800, 4000)
      : kind === 'redis-hold' ? rng.float(2000, 6000)
      : kind === 'redis-cut' ? rng.float(2000, 6000)
      : kind === 'redis-cut-all' ? rng.float(2000, 5000)
      : 0;
    out.push({ at, kind, target: rng.int(0, 1000), ms });
    at += rng.float(1500, 4500);
  }
  return out;
}

/** Restores of faults in force, run early at the end of the fault phase. */
const pendingRestores = new Map<NodeJS.Timeout, () => void>();
function restoreLater(ms: number, fn: () => void): void {
  const t = later(ms, () => {
    pendingRestores.delete(t);
    fn();
  });
  pendingRestores.set(t, fn);
}
function restoreAllNow(): void {
  for (const [t, fn] of [...pendingRestores]) {
    clearTimeout(t);
    timers.delete(t);
    pendingRestores.delete(t);
    fn();
  }
}

/**
 * The free worker running the most jobs (long ones first, by the last
 * process sample), ties broken by counting round from `target`: a pause or a
 * helper kill then hits live jobs.
 */
function busiest(target: number): Member | null {
  const pool = workers();
  let best: Member | null = null;
  let score = -1;
  for (let i = 0; i < pool.length; i++) {
    const m = pool[(target + i) % pool.length];
    if (m.busy || m.state !== 'up') continue;
    const l = liveByWorker.get(m.name) ?? { trees: 0, long: 0 };
    const sc = l.long * 100 + l.trees;
    if (sc > score) {
      best = m;
      score = sc;
    }
  }
  return best;
}

/** The target-th member of `pool` that is free, counting round from `target`. */
function choose(pool: Member[], target: number): Member | null {
  for (let i = 0; i < pool.length; i++) {
    const m = pool[(target + i) % pool.length];
    if (!m.busy && m.state === 'up') return m;
  }
  return null;
}

async function terminateBackends(): Promise<number> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL, application_name: 'chaos-harness' });
  await admin.connect();
  try {
    const r = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> 'chaos-harness'`,
      [dbName],
    );
    return r.rowCount ?? 0;
  } finally {
    await admin.end();
  }
}

async function inject(f: Fault): Promise<void> {
  const record = (target: string, detail: string) => {
    faultLog.push({ at: Date.now() - phaseStart, ms: f.ms, kind: f.kind, target, detail });
    say(`fault ${f.kind} ${target}: ${detail}`);
  };
  const secs = (f.ms / 1000).toFixed(1);
  switch (f.kind) {
    case 'kill-worker': {
      const w = choose(workers(), f.target);
      if (!w) return record('-', 'skipped (no free worker)');
      const pid = w.pid;
      w.busy = true;
      w.kill('SIGKILL');
      record(w.name, `kill -9 pid ${pid}; restart in ${secs} s`);
      restoreLater(f.ms, () => {
        w.busy = false;
        if (!stopping && !w.child) w.start();
        say(`restore ${w.name}: restarted (pid ${w.pid})`);
      });
      return;
    }
    case 'kill-helper': {
      const w = busiest(f.target);
      if (!w) return record('-', 'skipped (no free worker)');
      const helpers = childrenOf(w.pid).filter((c) => /spawner/.test(exeOf(c)) || /spawner/i.test(readStat(c)?.comm ?? '') || /spawnerProcess/.test(cmdline(c)));
      if (helpers.length === 0) return record(w.name, `skipped (no spawner helper under pid ${w.pid})`);
      const h = helpers[f.target % helpers.length];
      const jobsUnder = childrenOf(h).length;
      try {
        process.kill(h, 'SIGKILL');
      } catch {
        /* gone */
      }
      record(w.name, `kill -9 spawner helper pid ${h} (child of worker pid ${w.pid}, ${jobsUnder} job(s) under it)`);
      return;
    }
    case 'kill-api': {
      const up = apis().filter((a) => a.state === 'up' && !a.busy && a.listening);
      if (up.length < 2) return record('-', 'skipped (the other API is down or not listening yet)');
      const a = up[f.target % up.length];
      const pid = a.pid;
      a.busy = true;
      a.listening = false;
      a.kill('SIGKILL');
      record(a.name, `kill -9 pid ${pid}; restart in ${secs} s`);
      restoreLater(f.ms, () => {
        a.busy = false;
        a.listening = false;
        if (!stopping && !a.child) a.start();
        say(`restore ${a.name}: restarted (pid ${a.pid})`);
      });
      return;
    }
    case 'stop-worker': {
      const w = busiest(f.target);
      if (!w) return record('-', 'skipped (no free worker)');
      w.busy = true;
      w.kill('SIGSTOP');
      const live = liveByWorker.get(w.name);
      record(w.name, `SIGSTOP pid ${w.pid} for ${secs} s (lease ~${3 * HEARTBEAT_SECONDS} s) while it runs ${live?.trees ?? 0} job(s), ${live?.long ?? 0} long`);
      restoreLater(f.ms, () => {
        w.kill('SIGCONT');
        w.busy = false;
        say(`restore ${w.name}: SIGCONT pid ${w.pid}`);
      });
      return;
    }
    case 'pg-cut':
    case 'pg-hold':
    case 'redis-cut':
    case 'redis-hold': {
      const m = choose(members, f.target);
      if (!m) return record('-', 'skipped (no free process)');
      const pgFault = f.kind.startsWith('pg');
      const hold = f.kind.endsWith('hold');
      const proxy = pgFault ? m.pgProxy : m.redisProxy;
      if (proxy.isCut) return record(m.name, 'skipped (already cut)');
      m.busy = true;
      proxy.cut(hold ? 'hold' : 'reset');
      record(m.name, `${pgFault ? 'PostgreSQL' : 'Redis'} ${hold ? 'silent (connections open, nothing flows)' : 'connections cut'} for ${secs} s`);
      restoreLater(f.ms, () => {
        void proxy.restore();
        m.busy = false;
        say(`restore ${m.name}: ${pgFault ? 'PostgreSQL' : 'Redis'} reachable again`);
      });
      return;
    }
    case 'pg-terminate': {
      try {
        const n = await terminateBackends();
        record('all', `pg_terminate_backend on ${n} connection(s) of ${dbName}`);
      } catch (err) {
        record('all', `pg_terminate_backend failed: ${(err as Error).message}`);
      }
      return;
    }
    case 'redis-cut-all': {
      const cut = members.map((m) => m.redisProxy).filter((p) => !p.isCut);
      for (const p of cut) p.cut('reset');
      record('all', `Redis cut for every process for ${secs} s`);
      restoreLater(f.ms, () => {
        for (const p of cut) void p.restore();
        say('restore all: Redis reachable again');
      });
      return;
    }
  }
}

const ourJobIds = new Set<string>();

/** Cgroup directories of this run's jobs (named `<job id>-…` under a `jobrunner` directory of each hierarchy). */
function jobCgroups(): string[] {
  const out: string[] = [];
  const roots = ['/sys/fs/cgroup/jobrunner'];
  try {
    for (const h of readdirSync('/sys/fs/cgroup')) roots.push(`/sys/fs/cgroup/${h}/jobrunner`);
  } catch {
    /* no cgroup fs */
  }
  for (const root of roots) {
    let names: string[];
    try {
      names = readdirSync(root);
    } catch {
      continue;
    }
    for (const n of names) if (ourJobIds.has(n.slice(0, 36))) out.push(`${root}/${n}`);
  }
  return out;
}

/** Processes whose command line names this run's temporary directory (spawner helpers pass it to --hide), but not the services. */
function ourProcesses(): Array<{ pid: number; ppid: number; cmd: string }> {
  const out: Array<{ pid: number; ppid: number; cmd: string }> = [];
  const memberPids = new Set(members.map((m) => m.pid));
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (memberPids.has(pid) || pid === process.pid) continue;
    const cmd = cmdline(pid);
    if (!cmd.includes(`${tmp}/`)) continue;
    out.push({ pid, ppid: readStat(pid)?.ppid ?? 0, cmd });
  }
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- database reads

async function statusCounts(): Promise<Record<string, number>> {
  const r = await harnessPool!.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM jobs GROUP BY status');
  const out: Record<string, number> = { pending: 0, running: 0, success: 0, failed: 0, canceled: 0 };
  for (const row of r.rows) out[row.status] = Number(row.n);
  return out;
}

interface JobRow {
  id: string;
  name: string;
  status: string;
  error: string | null;
  exit_code: number | null;
  attempt?: number;
  worker_id?: string | null;
  owner_id: string;
  created_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
}

// ---------------------------------------------------------------- main

interface Check {
  name: string;
  failures: string[];
  note?: string;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) say('warning: not root: /proc/*/environ of jobs may be unreadable, process sampling would see nothing');
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);

  const rngJobs = new Rng(SEED, 'jobs');
  const rngUsers = new Rng(SEED, 'users');
  const rngFaults = new Rng(SEED, 'faults');
  const rngSubs = new Rng(SEED, 'subs');

  // Database and proxies.
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL, application_name: 'chaos-harness' });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  dbCreated = true;
  await admin.end();
  const dbUrl = new URL(PG_ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const pgUrl = new URL(PG_ADMIN_URL);
  harnessPool = new pg.Pool({ connectionString: dbUrl.toString(), application_name: 'chaos-harness', max: 3 });
  harnessPool.on('error', () => {});

  const pgTarget = { host: pgUrl.hostname || '127.0.0.1', port: Number(pgUrl.port || 5432) };
  const names: Array<[string, Kind]> = [['api-1', 'api'], ['api-2', 'api'], ['worker-1', 'worker'], ['worker-2', 'worker'], ['worker-3', 'worker']];
  for (const [name, kind] of names) {
    const pgProxy = await startProxy(pgTarget.host, pgTarget.port);
    const redisProxy = await startProxy(REDIS_HOST, REDIS_PORT);
    proxies.push(pgProxy, redisProxy);
    members.push(new Member(name, kind, kind === 'api' ? await freePort() : 0, pgProxy, redisProxy, dbUrl.toString()));
  }
  say(`database ${dbName}, Redis prefix ${REDIS_PREFIX}, job markers ${MARKER_PREFIX}*, service logs in ${tmp}${opts.keep ? '' : ' (removed at the end; --keep keeps them)'}`);

  // Processes: the first API migrates, then the rest.
  const [api1, api2] = apis();
  api1.start();
  await waitHealthy(api1);
  api2.start();
  for (const w of workers()) w.start();
  await waitHealthy(api2);
  {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await harnessPool.query<{ pid: number }>('SELECT pid FROM workers');
      const pids = new Set(r.rows.map((x) => Number(x.pid)));
      if (workers().every((w) => pids.has(w.pid))) break;
      if (Date.now() > deadline) throw new Error(`workers did not register within 60 s: ${workers().map((w) => `${w.name}: ${lastLogLine(w.log)}`).join(' | ')}`);
      for (const w of workers()) if (!w.child) throw new Error(`${w.name} exited during start-up: ${lastLogLine(w.log)}`);
      await sleep(200);
    }
  }
  say(`up: ${members.map((m) => `${m.name} pid ${m.pid}${m.port ? ` :${m.port}` : ''}`).join(', ')}`);

  // Users with caps 1-3 (the first always 1: the tightest cap).
  const adminToken = await login(api1, ADMIN_EMAIL, ADMIN_PASSWORD);
  const nUsers = rngUsers.int(3, 4);
  for (let i = 0; i < nUsers; i++) {
    // The first user always has cap 1 (the tightest), the second 3, so the run can drain in time.
    const cap = i === 0 ? 1 : i === 1 ? 3 : rngUsers.int(1, 3);
    const name = `u${i + 1}`;
    const email = `${RUN}-${name}@example.com`;
    const password = 'ChaosUser-' + randomBytes(6).toString('hex');
    const r = await http(`${api1.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email, password, role: 'operator', max_concurrent_jobs: cap }),
    });
    if (r.status !== 201) throw new Error(`create user: ${r.status} ${r.text.slice(0, 300)}`);
    users.push({ name, email, id: r.body.id, cap, token: await login(api1, email, password) });
  }
  say(`users: ${users.map((u) => `${u.name} cap ${u.cap}`).join(', ')}`);

  // Plans: jobs (times, users, shapes), the subscription sample and faults.
  const durationMs = DURATION_S * 1000;
  const subSample = rngSubs.sample(JOBS, SUBS);
  const capSum = users.reduce((s, u) => s + u.cap, 0);
  const times = Array.from({ length: JOBS }, () => rngJobs.float(0, durationMs * 0.92)).sort((a, b) => a - b);
  const specs: JobSpec[] = times.map((at, index) => {
    // 0.2 to 3 s, most of them short (mean ~1.1 s), so 500 jobs drain within the time box;
    // one in 20 runs 5-9 s, so a worker paused past its lease still has live jobs when it is declared dead.
    const long = rngJobs.float() < 0.05;
    const lines = long ? rngJobs.int(8, 14) : rngJobs.int(3, 8);
    const total = long ? rngJobs.float(5, 9) : 0.2 + 2.8 * rngJobs.float() ** 2;
    // Users get jobs in proportion to their caps, so no user's queue outlasts the others'.
    let r = rngJobs.float(0, capSum);
    let user = 0;
    while (user < users.length - 1 && (r -= users[user].cap) >= 0) user++;
    if (long) longMarkers.add(`${MARKER_PREFIX}${String(index).padStart(4, '0')}`);
    return {
      index, marker: `${MARKER_PREFIX}${String(index).padStart(4, '0')}`, at, user, api: rngJobs.int(0, 1),
      lines, stepSeconds: total / lines, subscribe: subSample.has(index), subApi: rngSubs.int(0, 1),
    };
  });
  const faults = planFaults(rngFaults, durationMs);
  say(`plan: ${JOBS} jobs over ${DURATION_S} s (${SUBS} followed by jobUpdated + jobLog subscriptions), ${faults.length} faults`);

  // Sampler, and which API answers HTTP (an API is killed only while the other one answers).
  const sampler = setInterval(sample, 100);
  const poller = setInterval(() => {
    for (const a of apis()) {
      http(`${a.url}/api/v1/health`, { timeoutMs: 1000 }).then(
        () => (a.listening = true),
        () => (a.listening = false),
      );
    }
  }, 500);

  // Fault phase.
  phaseStart = Date.now();
  say(`fault phase: ${DURATION_S} s`);
  const submitsDone: Promise<void>[] = [];
  const submitter = (async () => {
    for (const spec of specs) {
      const wait = phaseStart + spec.at - Date.now();
      if (wait > 0) await sleep(wait);
      if (stopping) return;
      const rec: SubmitRecord = { spec, tries: [], id: null, marker: null, acceptedAt: null, done: false };
      submits.push(rec);
      submitsDone.push(submitOne(rec));
    }
  })();
  const injector = (async () => {
    for (const f of faults) {
      const wait = phaseStart + f.at - Date.now();
      if (wait > 0) await sleep(wait);
      if (stopping) return;
      await inject(f).catch((err) => say(`fault ${f.kind} failed: ${(err as Error).message}`));
    }
  })();
  const progress = setInterval(() => {
    void statusCounts()
      .then((c) => {
        const openSubs = subOps.filter((o) => !o.completed).length;
        say(`progress: submitted ${submits.filter((s) => s.id).length}/${JOBS} (retrying ${submits.filter((s) => !s.done).length}); pending ${c.pending}, running ${c.running}, success ${c.success}, failed ${c.failed}, canceled ${c.canceled}; subscriptions open ${openSubs}/${subOps.length}; samples ${samples}`);
      })
      .catch((err) => say(`progress: database read failed: ${(err as Error).message}`));
  }, 5000);
  await Promise.all([submitter, injector, sleep(Math.max(0, phaseStart + durationMs - Date.now()))]);

  // Settle: no more faults; everything restored and up.
  say('fault phase over: restoring everything');
  restoreAllNow();
  for (const p of proxies) p.restore();
  for (const m of members) {
    m.busy = false;
    if (m.state === 'stopped') m.kill('SIGCONT');
    if (!m.child) m.start();
  }
  for (const a of apis()) await waitHealthy(a).catch((err) => say(`!! ${(err as Error).message}`));
  const settleDeadline = Date.now() + SETTLE_S * 1000;
  let settled = false;
  while (Date.now() < settleDeadline) {
    const c = await statusCounts().catch(() => null);
    const retrying = submits.filter((s) => !s.done).length;
    if (c && c.pending + c.running === 0 && retrying === 0 && submits.length === JOBS) {
      settled = true;
      break;
    }
    await sleep(1000);
  }
  clearInterval(progress);
  const settledIn = ((Date.now() - (settleDeadline - SETTLE_S * 1000)) / 1000).toFixed(1);
  say(settled ? `settled in ${settledIn} s (no job pending or running)` : `NOT settled within ${SETTLE_S} s`);
  await Promise.race([Promise.all(submitsDone), sleep(15_000)]);

  // Subscriptions: bounded wait for the ones still open.
  const subDeadline = Date.now() + 20_000;
  while (subOps.some((o) => !o.completed) && Date.now() < subDeadline) await sleep(250);
  // A last look at the processes (grace for kills in flight), then stop sampling.
  await sleep(2000);
  clearInterval(sampler);
  clearInterval(poller);
  sample();
  const leftovers = markedProcsNow();
  for (const r of submits) if (r.id) ourJobIds.add(r.id);
  {
    const r = await harnessPool.query<{ id: string }>('SELECT id FROM jobs');
    for (const row of r.rows) ourJobIds.add(row.id);
  }
  const cgroupsLeft = jobCgroups();
  // Spawner helpers of this run (their command line names our data directory) no longer under a live worker of ours.
  const workerPids = new Set(workers().map((w) => w.pid));
  const orphanHelpers = ourProcesses().filter((p) => /spawner/.test(p.cmd) && !workerPids.has(p.ppid));

  // ------------------------------------------------------------ checks
  const jobsRes = await harnessPool.query<JobRow>('SELECT * FROM jobs');
  const jobs = jobsRes.rows;
  const hasAttempt = jobs.length > 0 && 'attempt' in jobs[0];
  const hasWorker = jobs.length > 0 && 'worker_id' in jobs[0];
  // API view (attempt / worker_id when JobRead carries them), for a cross-check with the database.
  const apiJobs = new Map<string, any>();
  try {
    let after: string | null = null;
    for (let page = 0; page < 20; page++) {
      const res: Response = await fetch(`${api1.url}/api/v1/jobs?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`, { headers: { authorization: `Bearer ${adminToken}` }, signal: AbortSignal.timeout(15_000) });
      if (res.status !== 200) throw new Error(`GET /jobs: ${res.status}`);
      for (const j of (await res.json()) as any[]) apiJobs.set(j.id, j);
      after = res.headers.get('x-next-cursor');
      if (!after) break;
    }
  } catch (err) {
    say(`warning: listing jobs through the API failed: ${(err as Error).message}`);
  }
  const apiHasAttempt = [...apiJobs.values()].some((j) => 'attempt' in j);
  const apiHasWorker = [...apiJobs.values()].some((j) => 'worker_id' in j);

  const chunksRes = await harnessPool.query<{ job_id: string; seq: number; stream: string; data: string }>('SELECT job_id, seq, stream, data FROM job_log_chunks ORDER BY job_id, seq');
  const chunksByJob = new Map<string, Array<{ seq: number; stream: string; data: string }>>();
  for (const c of chunksRes.rows) {
    let l = chunksByJob.get(c.job_id);
    if (!l) chunksByJob.set(c.job_id, (l = []));
    l.push({ seq: Number(c.seq), stream: c.stream, data: c.data });
  }

  const specByMarker = new Map(specs.map((s) => [s.marker, s]));
  const recByMarker = new Map(submits.map((r) => [r.spec.marker, r]));
  // By the marker of one submit request (a second row there: the product duplicated it), and by job (client retries).
  const jobsByMarker = new Map<string, JobRow[]>();
  const jobsByBase = new Map<string, JobRow[]>();
  for (const j of jobs) {
    for (const [map, key] of [[jobsByMarker, j.name], [jobsByBase, baseOf(j.name)]] as const) {
      let l = map.get(key);
      if (!l) map.set(key, (l = []));
      l.push(j);
    }
  }
  const userById = new Map(users.map((u) => [u.id, u]));
  const memberOfWorkerId = (id: string | null | undefined) => {
    const pid = Number(String(id ?? '').split(':')[1]);
    return members.find((m) => m.pids.includes(pid))?.name;
  };
  /** Every fault on the job's worker (or on all processes) in force while the job existed: the likely cause of what went wrong. */
  const faultsMeanwhile = (j: JobRow) => {
    const ts = [...trees.values()].filter((t) => t.marker === j.name);
    const ws = new Set(ts.map((t) => t.worker));
    const w = memberOfWorkerId(apiJobs.get(j.id)?.worker_id ?? j.worker_id);
    if (w) ws.add(w);
    ws.add('all');
    // While it ran (its processes, else from its start or submission), to its outcome.
    const from = (ts.length ? Math.min(...ts.map((t) => t.first)) : (j.started_at ?? j.created_at)?.getTime() ?? 0) - 1000;
    const to = Math.max(...ts.map((t) => t.last), j.finished_at?.getTime() ?? 0) + 1000;
    return faultLog.filter((f) => ws.has(f.target) && !/^skipped/.test(f.detail) && phaseStart + f.at <= to && phaseStart + f.at + f.ms >= from);
  };
  const describe = (j: JobRow) => {
    const a = apiJobs.get(j.id);
    const ts = [...trees.values()].filter((t) => t.marker === j.name);
    const fs = faultsMeanwhile(j);
    return `${j.name} id ${j.id} (${userById.get(j.owner_id)?.name ?? j.owner_id}) status ${j.status}${j.error ? ` error "${j.error.slice(0, 120)}"` : ''}` +
      `${hasAttempt ? ` attempt ${j.attempt}` : ''}${hasWorker ? ` worker_id ${j.worker_id ?? 'null'}` : ''}` +
      `${a && a.status !== j.status ? ` [API says ${a.status}]` : ''}` +
      `${ts.length ? `; process trees: ${ts.map((t) => `${t.worker} ${fmtT(t.first)}-${fmtT(t.last)}`).join(', ')}` : ''}` +
      `${fs.length ? `; faults meanwhile: ${fs.map((f) => `${f.kind} ${f.target} at ${(f.at / 1000).toFixed(1)}s`).join(', ')}` : ''}`;
  };

  const checks: Check[] = [];

  // 0. The run did real work (a harness or set-up problem must not pass as "no violation").
  {
    const c: Check = { name: '0. the run exercised the service', failures: [] };
    const ok = jobs.filter((j) => j.status === 'success').length;
    if (ok < JOBS / 2) c.failures.push(`only ${ok} of ${JOBS} jobs succeeded`);
    if (trees.size < Math.min(JOBS, 20) / 2) c.failures.push(`only ${trees.size} job process trees were ever sampled (is the run root? are jobs running?)`);
    // A stalled sampler only misses violations (it cannot invent one); past 5 s its checks are too holey to pass.
    if (maxSampleGap > 5000) c.failures.push(`the process sampler stalled for ${maxSampleGap} ms (its checks have holes)`);
    checks.push(c);
  }

  // 1. Every job in exactly one terminal state.
  {
    const c: Check = { name: '1. every job in exactly one terminal state', failures: [] };
    for (const j of jobs) {
      if (!['success', 'failed', 'canceled'].includes(j.status)) c.failures.push(`not terminal: ${describe(j)}`);
      const a = apiJobs.get(j.id);
      if (a && a.status !== j.status) c.failures.push(`API and database disagree: ${describe(j)}`);
    }
    for (const rec of submits) {
      if (rec.id && !jobs.some((j) => j.id === rec.id)) c.failures.push(`${rec.spec.marker}: accepted (202, id ${rec.id}) but no such job in the database`);
    }
    if (!settled) c.note = `did not settle within ${SETTLE_S} s`;
    checks.push(c);
  }

  // 2. No job started twice in one attempt; no two attempts overlapping; no process outliving its job's outcome.
  {
    const c: Check = { name: '2. no job started twice in one attempt, no overlapping attempts', failures: [] };
    for (const e of overlapEpisodes.values()) c.failures.push(`${e.detail} from ${fmtT(e.first)} to ${fmtT(e.last)} (${e.samples} samples); ${jobsByMarker.get(e.what)?.map(describe).join(' / ') ?? ''}`);
    for (const [marker, js] of jobsByMarker) {
      if (!specByMarker.has(baseOf(marker))) continue;
      const ts = [...trees.values()].filter((t) => t.marker === marker);
      const j = js[0];
      if (js.length === 1 && ts.length > 1) {
        const attempt = apiHasAttempt ? Number(apiJobs.get(j.id)?.attempt) : hasAttempt ? Number(j.attempt) : 1;
        if (ts.length > Math.max(attempt, 1)) c.failures.push(`${marker}: ${ts.length} separate process trees seen but attempt ${attempt}: ${describe(j)}`);
      }
      for (const t of ts) {
        // A job's processes are gone before its outcome is recorded (a lapsed lease: killed by the helper first);
        // 1 s of slack for timestamp granularity.
        if (j.finished_at && t.last > j.finished_at.getTime() + 1000) {
          c.failures.push(`${marker}: process tree (${t.worker}) still alive ${((t.last - j.finished_at.getTime()) / 1000).toFixed(1)} s after the job was recorded ${j.status}: ${describe(j)}`);
        }
      }
      if (j.status === 'success' && (hasAttempt || apiHasAttempt)) {
        const attempt = apiHasAttempt ? Number(apiJobs.get(j.id)?.attempt) : Number(j.attempt);
        if (!(attempt >= 1)) c.failures.push(`${marker}: success with attempt ${attempt}: ${describe(j)}`);
      }
    }
    c.note = `${trees.size} process trees of ${new Set([...trees.values()].map((t) => t.marker)).size} jobs sampled; attempt from ${apiHasAttempt ? 'API' : hasAttempt ? 'database' : 'nowhere (field absent)'}, worker_id from ${apiHasWorker ? 'API' : hasWorker ? 'database' : 'nowhere'}`;
    checks.push(c);
  }

  // 3. Per-user caps never exceeded (process samples).
  {
    const c: Check = { name: '3. per-user caps never exceeded (process samples)', failures: [] };
    for (const e of capEpisodes.values()) c.failures.push(`${e.detail} from ${fmtT(e.first)} to ${fmtT(e.last)} (${e.samples} samples)`);
    c.note = `max live per user: ${users.map((u) => `${u.name} ${maxLivePerUser.get(u.name) ?? 0}/${u.cap}`).join(', ')}; ${samples} samples, longest gap ${maxSampleGap} ms`;
    checks.push(c);
  }

  // 4. Every stored log has contiguous seqs (or an explicit gap marker); a success job's output is complete.
  const gapMarker = (ch: { stream: string; data: string } | undefined) => !!ch && (!['stdout', 'stderr'].includes(ch.stream) || /\b(gap|lost|missing|dropped)\b/i.test(ch.data));
  {
    const c: Check = { name: '4. stored logs contiguous (1..n or explicit gap marker); success jobs have all their output', failures: [] };
    for (const j of jobs) {
      const spec = specByMarker.get(baseOf(j.name));
      if (!spec) continue;
      const chunks = chunksByJob.get(j.id) ?? [];
      for (let i = 0; i < chunks.length; i++) {
        const expect = i === 0 ? 1 : chunks[i - 1].seq + 1;
        if (chunks[i].seq !== expect && !gapMarker(chunks[i]) && !gapMarker(chunks[i - 1])) {
          c.failures.push(`${j.name}: seq ${chunks[i].seq} follows ${i === 0 ? 'nothing' : chunks[i - 1].seq} with no gap marker (${chunks.length} chunks): ${describe(j)}`);
          break;
        }
      }
      if (j.status === 'success') {
        const out = chunks.filter((ch) => ch.stream === 'stdout').map((ch) => ch.data).join('').split('\n');
        const err = chunks.filter((ch) => ch.stream === 'stderr').map((ch) => ch.data).join('').split('\n');
        const exp = expectedLines(spec, j.name);
        const missing = [...exp.stdout.filter((l) => !out.includes(l)), ...exp.stderr.filter((l) => !err.includes(l))];
        if (missing.length) c.failures.push(`${j.name}: success but ${missing.length} expected line(s) missing from the stored log (e.g. "${missing[0]}"): ${describe(j)}`);
      }
    }
    c.note = `${chunksRes.rows.length} chunks of ${chunksByJob.size} jobs`;
    checks.push(c);
  }

  // 5. Every subscription opened completed (with the job's final status / all its stored chunks).
  {
    const c: Check = { name: '5. every subscription opened completed', failures: [] };
    let notJudged = 0;
    for (const op of subOps) {
      const j = jobs.find((x) => x.id === op.jobId);
      const where = `${op.marker} ${op.kind === 'log' ? 'jobLog' : 'jobUpdated'} (${op.resumes} resume(s)${op.errors.length ? `; last error: ${op.errors[op.errors.length - 1].slice(0, 120)}` : ''})`;
      if (!op.completed && j && !['success', 'failed', 'canceled'].includes(j.status)) {
        notJudged++;
        continue;
      }
      if (!op.completed) {
        c.failures.push(`${where}: never completed; ${op.kind === 'log' ? `last seq ${op.lastSeq} of ${(chunksByJob.get(op.jobId) ?? []).length} stored` : `last status ${op.statuses[op.statuses.length - 1] ?? 'none'}`}; job: ${j ? describe(j) : 'missing'}`);
        continue;
      }
      if (op.kind === 'updated') {
        const last = op.statuses[op.statuses.length - 1];
        if (!j || last !== j.status) c.failures.push(`${where}: completed with last status ${last ?? 'none'}, job is ${j?.status}`);
      } else {
        const stored = (chunksByJob.get(op.jobId) ?? []).map((ch) => ch.seq);
        const seen = new Set(op.seqs);
        const missed = stored.filter((s) => !seen.has(s));
        if (missed.length) c.failures.push(`${where}: completed without ${missed.length} of ${stored.length} stored chunk(s) (e.g. seq ${missed[0]}); job: ${j ? describe(j) : 'missing'}`);
        if (op.anomalies.length) c.failures.push(`${where}: ${op.anomalies.length} order anomalies, e.g. ${op.anomalies[0]}`);
      }
    }
    const resumes = subOps.reduce((s, o) => s + o.resumes, 0);
    const withErrors = subOps.filter((o) => o.errorResults.length).length;
    c.note = `${subOps.length} subscriptions (${subOps.filter((o) => o.kind === 'log').length} jobLog), ${resumes} resumes on the other API, ${withErrors} got GraphQL errors${notJudged ? `; ${notJudged} of jobs not terminal not judged (see 1)` : ''}`;
    checks.push(c);
  }

  // 6. No process of any job left on the host.
  {
    const c: Check = { name: '6. no process of any job left on the host', failures: [] };
    const terminal = (m: string) => (jobsByMarker.get(m) ?? []).every((j) => ['success', 'failed', 'canceled'].includes(j.status));
    const running = leftovers.filter((p) => !terminal(p.marker));
    if (running.length) c.note = `${running.length} process(es) of ${new Set(running.map((p) => p.marker)).size} job(s) still pending/running not judged (see 1)`;
    for (const p of leftovers.filter((x) => terminal(x.marker))) c.failures.push(`pid ${p.pid} (${p.comm}, ppid ${p.ppid}) of ${p.marker} still alive after settling: ${jobsByMarker.get(p.marker)?.map(describe).join(' / ') ?? 'no job row'}`);
    checks.push(c);
  }

  // ------------------------------------------------------------ report
  const counts: Record<string, number> = {};
  for (const j of jobs) counts[j.status] = (counts[j.status] ?? 0) + 1;
  const failedBy = new Map<string, number>();
  for (const j of jobs) if (j.status === 'failed') failedBy.set(normError(j.error), (failedBy.get(normError(j.error)) ?? 0) + 1);
  const legitFailure = (e: string | null) => !!e && /worker (lost|shut|died|gone)|killed at worker shutdown/i.test(e);
  // Faults that hit the worker of a job while it ran (a kill of its spawner helper, of the worker, a pause).
  const faultsOn = (j: JobRow) => {
    const ts = [...trees.values()].filter((t) => t.marker === j.name);
    const ws = new Set(ts.map((t) => t.worker));
    const w = memberOfWorkerId(apiJobs.get(j.id)?.worker_id ?? j.worker_id);
    if (w) ws.add(w);
    // From its submission (a job claimed but not yet started is hit by faults too) to its outcome.
    const from = Math.min(...ts.map((t) => t.first), j.started_at?.getTime() ?? Infinity, j.created_at?.getTime() ?? Infinity) - 1500;
    const to = Math.max(...ts.map((t) => t.last), j.finished_at?.getTime() ?? 0) + 1500;
    // A fault counts while in force (a pause, a worker down) and for a lease (3 beats) after.
    return faultLog.filter((f) => ['kill-worker', 'kill-helper', 'stop-worker'].includes(f.kind) && ws.has(f.target) && phaseStart + f.at <= to && phaseStart + f.at + f.ms + 3000 * HEARTBEAT_SECONDS >= from && !/^skipped/.test(f.detail));
  };
  const suspicious: string[] = [];
  const explained = new Map<string, number>();
  for (const j of jobs) {
    if (j.status !== 'failed' || !specByMarker.has(baseOf(j.name)) || legitFailure(j.error)) continue;
    const out = (chunksByJob.get(j.id) ?? []).filter((ch) => ch.stream === 'stdout').map((ch) => ch.data).join('');
    const saidDone = out.includes(`done ${j.name}`);
    const hits = faultsOn(j);
    if (hits.length && !saidDone) {
      const key = `"${normError(j.error)}" after ${[...new Set(hits.map((f) => f.kind))].join('/')}`;
      explained.set(key, (explained.get(key) ?? 0) + 1);
    } else suspicious.push(`${saidDone ? 'printed "done" yet ' : ''}failed with "${(j.error ?? 'no error').slice(0, 140)}"${hits.length ? ` (faults on its worker: ${hits.map((f) => `${f.kind} at ${(f.at / 1000).toFixed(1)}s`).join(', ')})` : ''}: ${describe(j)}`);
  }
  const doneButLost = jobs.filter((j) => j.status === 'failed' && legitFailure(j.error) && (chunksByJob.get(j.id) ?? []).some((ch) => ch.data.includes(`done ${j.name}`))).length;
  const dupClient: string[] = [];
  const dupProduct: string[] = [];
  for (const [base, js] of jobsByBase) {
    const rec = recByMarker.get(base);
    if (js.length < 2 || !rec) continue;
    const line = `${base}: ${js.length} jobs (${js.map((j) => `${j.name} ${j.id} ${j.status}`).join(', ')}); submit tries: ${rec.tries.join(' → ')}`;
    // Two rows for one request's marker: the service made them; rows of different tries: the client's retries.
    if (js.some((j) => (jobsByMarker.get(j.name) ?? []).length > 1)) dupProduct.push(line);
    else dupClient.push(line);
  }
  const lostSubmits = submits.filter((r) => !r.id && !jobsByBase.has(r.spec.marker));
  const gaveUpButCreated = submits.filter((r) => !r.id && jobsByBase.has(r.spec.marker));
  if (dupProduct.length) checks.push({ name: '1b. one job per submit (no duplicate without a client retry)', failures: dupProduct });

  console.log('\n================ chaos summary ================');
  console.log(`seed ${SEED}; ${JOBS} jobs, ${DURATION_S} s of faults; ${users.map((u) => `${u.name} cap ${u.cap}`).join(', ')}`);
  const fk = new Map<string, number>();
  for (const f of faultLog) if (!/^skipped/.test(f.detail)) fk.set(f.kind, (fk.get(f.kind) ?? 0) + 1);
  console.log(`faults injected: ${[...fk].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'} (${faultLog.filter((f) => /^skipped/.test(f.detail)).length} skipped)`);
  console.log(`jobs: ${jobs.length} rows; ${Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  console.log(`failed by error: ${[...failedBy].map(([k, n]) => `"${k}" ${n}`).join(', ') || 'none'}`);
  console.log(`failed for a lost worker although the job printed "done": ${doneButLost} (legitimate when the worker was killed after the job finished, before it recorded the outcome)`);
  console.log(`submits: ${submits.filter((r) => r.tries.length === 1 && r.id).length} first try, ${submits.filter((r) => r.tries.length > 1 && r.id).length} after client retries, ${lostSubmits.length} gave up with no job, ${gaveUpButCreated.length} gave up but the job exists`);
  console.log(`duplicates from client retries (not a product bug): ${dupClient.length}`);
  for (const d of dupClient.slice(0, 5)) console.log(`  ${d}`);
  const subErrors = new Map<string, number>();
  for (const o of subOps) for (const e of o.errorResults) subErrors.set(e.replace(/^api-\d: /, ''), (subErrors.get(e.replace(/^api-\d: /, '')) ?? 0) + 1);
  console.log(`subscriptions that got a GraphQL error and were resubscribed (reported, not failed): ${subOps.filter((o) => o.errorResults.length).length}${subErrors.size ? `: ${[...subErrors].map(([k, n]) => `"${k.slice(0, 100)}" ${n}`).join(', ')}` : ''}`);
  console.log(`spawner helpers of this run alive after settling without their worker: ${orphanHelpers.length}${orphanHelpers.length ? ` (pids ${orphanHelpers.map((p) => `${p.pid} ppid ${p.ppid}`).join(', ')})` : ''}`);
  console.log('service log errors (level error, by message):');
  for (const m of members) console.log(`  ${m.name}: ${logDigest(m.log)}`);
  console.log(`job cgroups left behind after settling: ${new Set(cgroupsLeft.map((c) => c.split('/').pop()!.slice(0, 36))).size} job(s) (${cgroupsLeft.length} directories; removed by the clean-up)`);
  console.log(`unexpected process exits: ${members.filter((m) => m.unexpectedExits.length).map((m) => `${m.name}: ${m.unexpectedExits.join(', ')}`).join('; ') || 'none'}`);
  console.log(`failed with another error while a fault hit their worker (kill -9 of worker or helper, pause): ${[...explained].map(([k, n]) => `${k}: ${n}`).join('; ') || 'none'}`);
  const neverStarted = jobs.filter((j) => j.status === 'failed' && specByMarker.has(baseOf(j.name)) && !(chunksByJob.get(j.id) ?? []).length && ![...trees.values()].some((t) => t.marker === j.name));
  const nsErr = new Map<string, number>();
  for (const j of neverStarted) nsErr.set(normError(j.error), (nsErr.get(normError(j.error)) ?? 0) + 1);
  console.log(`failed with no output and no process ever sampled (never started? #14 asks that a job whose worker died before starting it be requeued): ${neverStarted.length}${nsErr.size ? ` (${[...nsErr].map(([k, n]) => `"${k}" ${n}`).join(', ')})` : ''}`);
  console.log(`suspicious failures (an error other than worker loss, no kill or pause of its worker then, or the job printed "done"): ${suspicious.length}`);
  for (const s of suspicious.slice(0, 10)) console.log(`  ${s}`);
  console.log('');
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) console.log(`${c.name.padEnd(width)}  ${c.failures.length ? `FAIL (${c.failures.length})` : 'ok'}${c.note ? `   ${c.note}` : ''}`);
  const failed = checks.filter((c) => c.failures.length);
  for (const c of failed) {
    console.log(`\nFAILED ${c.name}: ${c.failures.length}`);
    for (const f of c.failures.slice(0, opts.verbose ? 1000 : 15)) console.log(`  - ${f}`);
    if (c.failures.length > (opts.verbose ? 1000 : 15)) console.log(`  ... ${c.failures.length - 15} more (--verbose shows all)`);
  }
  console.log('');
  if (failed.length) {
    console.log(`chaos: ${failed.length} invariant(s) FAILED: ${failed.map((c) => c.name.split('.')[0]).join(', ')}; seed ${SEED}; replay: ${REPLAY}`);
    if (opts.keep) console.log(`process logs kept in ${tmp}`);
    return 1;
  }
  console.log(`chaos: every invariant holds; seed ${SEED}`);
  return 0;
}

/** Error lines of a service log grouped by message (JSON lines; other lines, e.g. a crash, count as they are). */
function logDigest(file: string): string {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return 'no log';
  }
  const byMsg = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let msg: string | null = null;
    try {
      const o = JSON.parse(line) as { level?: string; msg?: string; err?: { message?: string } | string };
      if (o.level === 'error') msg = `${o.msg ?? ''}${o.err ? `: ${typeof o.err === 'string' ? o.err : (o.err.message ?? '')}` : ''}`;
    } catch {
      if (/error/i.test(line)) msg = line;
    }
    if (msg) {
      const key = msg.replace(/\s+/g, ' ').replace(/[0-9a-f]{8,}(-[0-9a-f]{4,})*/gi, '…').slice(0, 110);
      byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
    }
  }
  if (!byMsg.size) return 'none';
  const total = [...byMsg.values()].reduce((a, b) => a + b, 0);
  return `${total}: ${[...byMsg].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => `${n}× "${k}"`).join('; ')}`;
}

function normError(e: string | null): string {
  return (e ?? 'no error').replace(/[0-9a-f]{8,}/gi, '…').replace(/\d+/g, 'N').slice(0, 80);
}

function fmtT(ms: number): string {
  return `${((ms - phaseStart) / 1000).toFixed(1)}s`;
}

// ---------------------------------------------------------------- clean-up

let cleaned: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    stopping = true;
    for (const t of timers) clearTimeout(t);
    for (const c of wsClients) void c.dispose();
    for (const p of proxies) p.restore();
    // Our workers' current helpers, remembered before the workers go.
    for (const w of workers()) if (w.pid) for (const c of childrenOf(w.pid)) {
      const st = readStat(c);
      if (st) helperPids.set(c, st.starttime);
    }
    await Promise.all(members.map((m) => m.stop().catch(() => {})));
    await sleep(300);
    // Whatever is left: our spawner helpers (same start time, so never a recycled pid) and our jobs' processes.
    for (const [pid, start] of helperPids) {
      if (readStat(pid)?.starttime === start) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const p of ourProcesses()) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    try {
      for (const p of markedProcsNow()) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    } catch {
      /* /proc unreadable */
    }
    // Empty cgroups of this run's jobs that the service left (rmdir only removes empty ones).
    for (const dir of jobCgroups().sort((a, b) => b.length - a.length)) {
      try {
        rmdirSync(dir);
      } catch {
        /* busy or gone */
      }
    }
    for (const p of proxies) await p.close().catch(() => {});
    await harnessPool?.end().catch(() => {});
    if (dbCreated) {
      try {
        const admin = new pg.Client({ connectionString: PG_ADMIN_URL, application_name: 'chaos-harness' });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
        await admin.end();
      } catch (err) {
        console.error(`chaos: could not drop database ${dbName}: ${(err as Error).message}`);
      }
    }
    try {
      const redis = new Redis({ host: REDIS_HOST, port: REDIS_PORT, lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${REDIS_PREFIX}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
      redis.disconnect();
    } catch {
      /* Redis keys are best effort */
    }
    if (!opts.keep) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaned;
}

// Ctrl-C reaches npm, tsx and this process at once (tsx relays it too): the
// first signal cleans up, further ones within 3 s are that same Ctrl-C; a
// later one, or a clean-up running past 60 s, exits at once.
let interruptedAt = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interruptedAt) {
      if (Date.now() - interruptedAt > 3000) process.exit(130);
      return;
    }
    interruptedAt = Date.now();
    console.log(`\nchaos: ${sig}: cleaning up (seed ${SEED}; replay: ${REPLAY})`);
    setTimeout(() => process.exit(130), 60_000).unref();
    void cleanup().finally(() => process.exit(130));
  });
}

if (opts.plan) {
  // The fault schedule of this seed (targets are resolved when each fault fires), without running anything.
  for (const f of planFaults(new Rng(SEED, 'faults'), DURATION_S * 1000)) console.log(`${(f.at / 1000).toFixed(1).padStart(6)}s ${f.kind}${f.ms ? ` for ${(f.ms / 1000).toFixed(1)} s` : ''}`);
  rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err) => {
    console.error(`chaos: run aborted: ${(err as Error).stack ?? err}\nseed ${SEED}; replay: ${REPLAY}`);
    await cleanup();
    process.exit(2);
  });
