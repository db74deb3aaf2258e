// Redis faults (issue #14, scenarios 2 and 7, and start-up): real PostgreSQL,
// real Redis reached through a TCP proxy this test owns (never the machine's
// Redis itself), apps built in-process as in test/scaleout, real graphql-ws
// and HTTP clients.
//
// - A worker loses Redis while jobs run; a healthy API's subscriptions and
//   SSE log streams on those jobs still complete with the final status and
//   every chunk once, whether Redis comes back or not.
// - Deployments sharing one Redis (different REDIS_PREFIX, or only a
//   different database index) never see each other's events.
// - Start-up with Redis unreachable waits and says so, then starts; an
//   outage later is logged once each way, /health says so, and publishes are
//   held in a bounded queue.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { JobChangedEvent } from '../../src/events/bus.js';
import { createRedisBus } from '../../src/events/redisBus.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { submit, waitRunning, waitTerminal } from '../helpers/jobs.js';
import { restClient, testServerEnv, tokenClient, waitFor, ADMIN_EMAIL, ADMIN_PASSWORD } from '../helpers/server.js';
import { openStream, type StreamReader } from '../helpers/sse.js';
import { JOB_EVENTS, JOB_LOG, JOB_UPDATED, track, withTimeout, wsClient, type Chunk, type Tracked, type WsClient } from '../helpers/ws.js';
import { startProxy, type TcpProxy } from './tcpProxy.js';

const REDIS_HOST = '127.0.0.1';
const REDIS_PORT = 6379;
const REDIS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}`;
/** Unique per run: other suites and other runs on this Redis use other channels. */
const RUN = `jrchaos-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
/** Generous bound for "completes": the point is that streams end at all, not how fast. */
const COMPLETES_WITHIN_MS = 45_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A logger that keeps every line (and prints errors), to check what an app says about Redis. */
function recordingLogger(): Logger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const quiet = createLogger('error');
  const make = (): Logger => ({
    debug: (msg) => void lines.push({ level: 'debug', msg }),
    info: (msg) => void lines.push({ level: 'info', msg }),
    warn: (msg) => void lines.push({ level: 'warn', msg }),
    error: (msg, f) => (lines.push({ level: 'error', msg }), quiet.error(msg, f)),
    scope: () => make(),
  });
  return Object.assign(make(), { lines });
}

/** An app's REST client with the admin's token. */
async function adminClient(url: string) {
  const api = `${url}/api/v1`;
  const token = await tokenClient(api)(ADMIN_EMAIL, ADMIN_PASSWORD);
  return { api, token, request: restClient(api) };
}

const LOG_JOB = ['sh', '-c', 'echo first; sleep 2; echo second; echo third >&2'];
const LOG_TEXT = 'first\nsecond\nthird\n';

interface Followers {
  jobId: string;
  log: Tracked<Chunk>;
  updated: Tracked<{ id: string; status: string; exitCode: number | null }>;
  sse: StreamReader;
}

/** The API's three live views of a running job, once each has delivered its first chunk (or row). */
async function followJob(ws: WsClient, admin: Awaited<ReturnType<typeof adminClient>>, jobId: string): Promise<Followers> {
  const log = track<Chunk>(ws.client, JOB_LOG, { id: jobId });
  const updated = track<{ id: string; status: string; exitCode: number | null }>(ws.client, JOB_UPDATED, { id: jobId });
  const sse = await openStream(`${admin.api}/jobs/${jobId}/logs/stream`, { headers: { authorization: `Bearer ${admin.token}`, accept: 'text/event-stream' } }, { sse: true });
  expect(sse.response.status).toBe(200);
  await waitFor(() => log.values.length > 0 && updated.values.length > 0 && sse.events.length > 0, 20_000);
  return { jobId, log, updated, sse };
}

/** Every view completed with the final status and every chunk of the job, each once, seqs 1..n. */
async function expectComplete(f: Followers, app: App) {
  const [logEnd, updatedEnd, sseEnd] = await withTimeout(Promise.all([f.log.done, f.updated.done, f.sse.ended]), COMPLETES_WITHIN_MS, `views of job ${f.jobId}`);
  expect({ logEnd, updatedEnd, sseEnd }).toEqual({ logEnd: 'complete', updatedEnd: 'complete', sseEnd: 'done' });
  expect(f.log.errors).toEqual([]);
  expect(f.updated.errors).toEqual([]);

  const stored = await app.db.prisma.jobLogChunk.findMany({ where: { jobId: f.jobId }, orderBy: { seq: 'asc' } });
  expect(stored.map((c) => c.seq)).toEqual(stored.map((_c, i) => i + 1));
  expect(stored.map((c) => c.data).sort().join('')).toBe(['first\n', 'second\n', 'third\n'].sort().join(''));

  // jobLog: all stored chunks, in order, once.
  expect(f.log.values.map((c) => c.seq)).toEqual(stored.map((c) => c.seq));
  expect(f.log.values.map((c) => c.data)).toEqual(stored.map((c) => c.data));
  // jobUpdated: ends on the final row.
  expect(f.updated.values.at(-1)).toMatchObject({ id: f.jobId, status: 'SUCCESS', exitCode: 0 });
  // SSE: one event per chunk (id = seq), then `end` with the final status.
  const chunks = f.sse.events.filter((e) => e.event === 'stdout' || e.event === 'stderr');
  expect(chunks.map((e) => Number(e.id))).toEqual(stored.map((c) => c.seq));
  expect(chunks.map((e) => e.data).join('')).toBe(stored.map((c) => c.data).join(''));
  const end = f.sse.events.at(-1)!;
  expect(end.event).toBe('end');
  expect(JSON.parse(end.data)).toEqual({ status: 'success', exit_code: 0 });
}

type JobEventValue = { id: string; status: string };

/** The statuses jobEvents delivered for `jobId`, in order. */
const statusesOf = (events: Tracked<JobEventValue>, jobId: string) => events.values.filter((v) => v.id === jobId).map((v) => v.status);

/** jobEvents delivered the final status of every job, and no status of a job twice. */
async function expectFinalEvents(events: Tracked<JobEventValue>, jobIds: string[]) {
  await waitFor(() => jobIds.every((id) => statusesOf(events, id).at(-1) === 'SUCCESS'), COMPLETES_WITHIN_MS, 50).catch(() => {
    throw new Error(`jobEvents: ${JSON.stringify(jobIds.map((id) => statusesOf(events, id)))}`);
  });
  for (const id of jobIds) {
    const statuses = statusesOf(events, id);
    expect(new Set(statuses).size, JSON.stringify(statuses)).toBe(statuses.length);
  }
  expect(events.errors).toEqual([]);
}

describe('a process loses Redis while jobs run (scenario 2)', () => {
  let db: TestDatabase;
  let api: App;
  let apiUrl: string;
  let admin: Awaited<ReturnType<typeof adminClient>>;
  let ws: WsClient;
  let env: Record<string, string>;
  let proxy: TcpProxy | null = null;
  const extra: App[] = [];
  const prefix = `${RUN}-s2`;

  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    env = testServerEnv(db, { REDIS_URL, REDIS_PREFIX: prefix, WORKER_CONCURRENCY: '4' });
    api = await buildApp(loadConfig(env), { log: createLogger('error'), worker: false });
    apiUrl = await api.start();
    admin = await adminClient(apiUrl);
    ws = wsClient({ url: apiUrl }, admin.token);
  });
  afterEach(async () => {
    await proxy?.restore();
    await Promise.all(extra.splice(0).map((a) => a.stop(0)));
    await proxy?.close();
    proxy = null;
  });
  afterAll(async () => {
    await ws?.dispose();
    await api?.stop(0);
    await db?.drop();
  });

  /** An app of this deployment; `proxied`: its only way to Redis is a fresh proxy. */
  async function member(options: { worker?: boolean; http?: boolean }, proxied: boolean): Promise<{ app: App; url: string }> {
    if (proxied) proxy = await startProxy(REDIS_HOST, REDIS_PORT);
    const app = await buildApp(loadConfig({ ...env, REDIS_URL: proxied ? proxy!.url('redis') : REDIS_URL }), { log: createLogger('error'), ...options });
    extra.push(app);
    return { app, url: await app.start() };
  }

  /** Submits jobs (through the healthy API), waits until they run and the views of them through `viewWs` / `viewAdmin` have started. */
  async function runningJobsFollowed(n: number, viewWs: WsClient, viewAdmin: Awaited<ReturnType<typeof adminClient>>): Promise<Followers[]> {
    const jobs = await Promise.all(Array.from({ length: n }, () => submit(admin, admin.token, { command: LOG_JOB })));
    await Promise.all(jobs.map((j) => waitRunning(admin, admin.token, j.id)));
    return Promise.all(jobs.map((j) => followJob(viewWs, viewAdmin, j.id)));
  }

  it('a worker cut for 8 s while its jobs end: every jobLog, jobUpdated, jobEvents and SSE log stream on a healthy API completes with the final status and all output', async () => {
    await member({ http: false }, true);
    const events = track<JobEventValue>(ws.client, JOB_EVENTS, {});
    await sleep(300); // jobEvents listens before the jobs exist
    const followers = await runningJobsFollowed(3, ws, admin);
    proxy!.cut();
    // The jobs end while the worker cannot publish.
    await Promise.all(followers.map((f) => waitTerminal(admin, admin.token, f.jobId)));
    await sleep(8_000 - 2_000);
    await proxy!.restore();
    for (const f of followers) await expectComplete(f, api);
    await expectFinalEvents(events, followers.map((f) => f.jobId));
    events.stop();
  });

  it('a worker cut for good: the views still complete (safety interval)', async () => {
    await member({ http: false }, true);
    const events = track<JobEventValue>(ws.client, JOB_EVENTS, {});
    await sleep(300);
    const followers = await runningJobsFollowed(2, ws, admin);
    proxy!.cut();
    await Promise.all(followers.map((f) => waitTerminal(admin, admin.token, f.jobId)));
    // Never restored during the test: only the API's own reconciliation with the database can end the streams.
    for (const f of followers) await expectComplete(f, api);
    await expectFinalEvents(events, followers.map((f) => f.jobId));
    expect(proxy!.isCut).toBe(true);
    events.stop();
  });

  it('an API cut for 8 s: its own views complete once it reconnects, jobEvents included for a job it never heard of', async () => {
    await member({ http: false }, false);
    const { app: cutApi, url: cutUrl } = await member({ worker: false }, true);
    const cutAdmin = await adminClient(cutUrl);
    const cutWs = wsClient({ url: cutUrl }, cutAdmin.token);
    try {
      const events = track<JobEventValue>(cutWs.client, JOB_EVENTS, {});
      await sleep(300);
      const followers = await runningJobsFollowed(2, cutWs, cutAdmin);
      proxy!.cut();
      // Submitted elsewhere, run and ended while the cut API hears nothing.
      const unseen = await submit(admin, admin.token, { command: ['sh', '-c', 'echo unseen'] });
      await Promise.all([...followers.map((f) => f.jobId), unseen.id].map((id) => waitTerminal(admin, admin.token, id)));
      await sleep(8_000 - 2_000);
      await proxy!.restore();
      for (const f of followers) await expectComplete(f, cutApi);
      await expectFinalEvents(events, [...followers.map((f) => f.jobId), unseen.id]);
      events.stop();
    } finally {
      await cutWs.dispose();
    }
  });
});

describe('deployments sharing one Redis stay apart (scenario 7)', () => {
  const dbs: TestDatabase[] = [];
  const apps: App[] = [];
  const raws: Redis[] = [];
  afterAll(async () => {
    raws.forEach((r) => r.disconnect());
    await Promise.all(apps.map((a) => a.stop(0)));
    await Promise.all(dbs.map((d) => d.drop()));
  });

  /** A deployment: its own database, API and worker in one app. */
  async function deployment(extra: Record<string, string>): Promise<{ app: App; url: string; admin: Awaited<ReturnType<typeof adminClient>> }> {
    const db = await createTestDatabase('postgresql');
    dbs.push(db);
    const app = await buildApp(loadConfig(testServerEnv(db, extra)), { log: createLogger('error') });
    apps.push(app);
    const url = await app.start();
    return { app, url, admin: await adminClient(url) };
  }

  /** A raw subscriber to every channel under `prefix`, counting what arrives. */
  async function rawListener(prefix: string): Promise<string[]> {
    const r = new Redis(REDIS_URL, { lazyConnect: true });
    raws.push(r);
    await r.connect();
    const seen: string[] = [];
    r.on('pmessage', (_pattern: string, channel: string) => seen.push(channel));
    await r.psubscribe(`${prefix}:*`);
    return seen;
  }

  /** Runs jobs on `from` while `to` listens with a jobEvents subscription and on its bus; `to` must see none of them. */
  async function expectApart(from: Awaited<ReturnType<typeof deployment>>, to: Awaited<ReturnType<typeof deployment>>, fromPrefix: string, toPrefix: string) {
    const fromChannels = await rawListener(fromPrefix);
    const toChannels = await rawListener(toPrefix);
    const onBus: JobChangedEvent[] = [];
    const off = to.app.bus.subscribe('job.changed', (e) => void onBus.push(e));
    const ws = wsClient({ url: to.url }, to.admin.token);
    try {
      const events = track(ws.client, JOB_EVENTS, {});
      await sleep(300); // the subscription is in place before the jobs start
      const jobs = await Promise.all(Array.from({ length: 3 }, () => submit(from.admin, from.admin.token, { command: ['sh', '-c', 'echo hi'] })));
      await Promise.all(jobs.map((j) => waitTerminal(from.admin, from.admin.token, j.id)));
      await sleep(1_000);
      // Nothing of the other deployment's reached this one: not its bus, not its subscribers, not its channels...
      const ids = new Set(jobs.map((j) => j.id));
      expect(onBus.filter((e) => ids.has(e.jobId))).toEqual([]);
      expect(events.values).toEqual([]);
      expect(toChannels).toEqual([]);
      // ...though the events did travel, under the sender's own prefix.
      await waitFor(() => fromChannels.some((c) => c.startsWith(`${fromPrefix}:job.changed`)), 5_000);
    } finally {
      off();
      await ws.dispose();
    }
  }

  it('two deployments with different REDIS_PREFIX on the same Redis database', async () => {
    const a = await deployment({ REDIS_URL, REDIS_PREFIX: `${RUN}-a` });
    const b = await deployment({ REDIS_URL, REDIS_PREFIX: `${RUN}-b` });
    await expectApart(a, b, `${RUN}-a`, `${RUN}-b`);
    await expectApart(b, a, `${RUN}-b`, `${RUN}-a`);
  });

  it('two deployments differing only by the database index of REDIS_URL (default prefix)', async () => {
    const c = await deployment({ REDIS_URL: `${REDIS_URL}/5` });
    const d = await deployment({ REDIS_URL: `${REDIS_URL}/6` });
    await expectApart(c, d, 'jobrunner:5', 'jobrunner:6');
    expect([c.app.config.redisPrefix, d.app.config.redisPrefix]).toEqual(['jobrunner:5', 'jobrunner:6']);
  });
});

describe('start-up and outages of Redis', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  const apps: App[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    proxy = await startProxy(REDIS_HOST, REDIS_PORT);
  });
  afterAll(async () => {
    await proxy?.restore();
    await Promise.all(apps.map((a) => a.stop(0)));
    await proxy?.close();
    await db?.drop();
  });

  it('waits for an unreachable Redis, saying which URL and what to check, starts once it answers, and reports outages in /health and once per change in the log', async () => {
    proxy.cut();
    const log = recordingLogger();
    const env = testServerEnv(db, { REDIS_URL: proxy.url('redis'), REDIS_PREFIX: `${RUN}-up` });
    let settled: 'built' | Error | null = null;
    const building = buildApp(loadConfig(env), { log, worker: false }).then(
      (app) => (apps.push(app), (settled = 'built'), app),
      (err: Error) => ((settled = err), Promise.reject(err)),
    );
    building.catch(() => {});
    await sleep(3_000);
    expect(settled).toBeNull();
    const retries = log.lines.filter((l) => l.msg.includes('cannot reach Redis'));
    expect(retries.length).toBeGreaterThanOrEqual(1);
    // Bounded rate: a few lines, not one per attempt (a dozen attempts fit in 3 s).
    expect(retries.length).toBeLessThanOrEqual(2);
    expect(retries[0]!.msg).toContain(proxy.url('redis'));
    expect(retries[0]!.msg).toMatch(/retrying/);
    expect(retries[0]!.msg).toMatch(/REDIS_URL/);

    await proxy.restore();
    const app = await withTimeout(building, 20_000, 'start-up after Redis came back');
    const url = await app.start();
    const health = () => fetch(`${url}/api/v1/health`).then((r) => r.json() as Promise<{ status: string; redis: boolean | null }>);
    expect(await health()).toMatchObject({ status: 'ok', redis: true });

    // An outage: /health says so at once, the log says so once, however many events are published meanwhile.
    proxy.cut();
    await waitFor(async () => (await withTimeout(health(), 3_000, '/health during an outage')).redis === false, 10_000, 100);
    for (let i = 0; i < 200; i++) app.bus.publish('dispatch.wake', {});
    await sleep(1_500);
    const down = log.lines.filter((l) => /unreachable/.test(l.msg) && !l.msg.includes('cannot reach Redis'));
    expect(down).toHaveLength(1);
    expect(log.lines.filter((l) => /publish failed|redis error/i.test(l.msg))).toEqual([]);

    await proxy.restore();
    await waitFor(async () => (await health()).redis === true, 15_000, 100);
    expect(log.lines.filter((l) => /reachable again/.test(l.msg))).toHaveLength(1);
  });

  it('a silent outage (packets dropped, connections left open): /health answers at once with redis false, the connections are dropped and reopened, and the state is logged once each way', async () => {
    const log = recordingLogger();
    const env = testServerEnv(db, { REDIS_URL: proxy.url('redis'), REDIS_PREFIX: `${RUN}-hold` });
    const app = await buildApp(loadConfig(env), { log, worker: false });
    apps.push(app);
    const url = await app.start();
    const health = () => withTimeout(fetch(`${url}/api/v1/health`).then((r) => r.json() as Promise<{ status: string; redis: boolean | null }>), 3_000, '/health');
    expect(await health()).toMatchObject({ status: 'ok', redis: true });
    proxy.cut('hold');
    // A PING that gets no answer counts as down: /health never waits on it for long.
    expect(await health()).toMatchObject({ status: 'unavailable', redis: false });
    // Nothing closes a silent connection by itself; the bus's own checks must notice.
    await waitFor(() => log.lines.some((l) => /is unreachable/.test(l.msg)), 20_000, 100);
    await proxy.restore();
    await waitFor(async () => (await health()).redis === true, 20_000, 100);
    expect(log.lines.filter((l) => /is unreachable/.test(l.msg))).toHaveLength(1);
    expect(log.lines.filter((l) => /reachable again/.test(l.msg))).toHaveLength(1);
  });

  it('holds publishes while Redis is away in a bounded queue, oldest dropped and counted, and sends the rest once it is back', async () => {
    const prefix = `${RUN}-queue`;
    const log = recordingLogger();
    const bus = await createRedisBus(proxy.url('redis'), log, { prefix, maxQueued: 5 });
    const listener = new Redis(REDIS_URL, { lazyConnect: true });
    await listener.connect();
    const got: number[] = [];
    listener.on('message', (_c: string, raw: string) => got.push((JSON.parse(raw) as { payload: { status: string } }).payload.status.length));
    await listener.subscribe(`${prefix}:job.changed`);
    const reconnects: number[] = [];
    bus.onReconnect(() => reconnects.push(Date.now()));
    try {
      proxy.cut();
      await waitFor(async () => !(await bus.ping()), 10_000, 50);
      // Payloads told apart by the length of `status`: 1..20.
      for (let i = 1; i <= 20; i++) bus.publish('job.changed', { jobId: 'j', ownerId: 'o', batchId: null, status: 'x'.repeat(i) }, 'j');
      await proxy.restore();
      await waitFor(() => got.length >= 5, 15_000);
      await sleep(300);
      expect(got).toEqual([16, 17, 18, 19, 20]);
      expect(reconnects).toHaveLength(1);
      expect(log.lines.find((l) => /reachable again/.test(l.msg))?.msg).toMatch(/15 older ones were dropped/);
    } finally {
      listener.disconnect();
      await bus.close();
    }
  });
});
