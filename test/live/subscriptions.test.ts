// GraphQL subscriptions over WebSocket (graphql-transport-ws): jobLog from
// the start, from halfway and across a reconnect; jobUpdated; jobEvents;
// authentication close codes; NOT_FOUND for jobs the caller may not see.
import { writeFileSync } from 'node:fs';
import { SignJWT, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { getLogs, jobGate, submit, waitTerminal } from '../helpers/jobs.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { JOB_EVENTS, JOB_LOG, JOB_UPDATED, linesOf, track, withTimeout, wsClient, type Chunk, type WsClient } from '../helpers/ws.js';

const COUNT_TO_500 = ['sh', '-c', 'for i in $(seq 1 500); do echo $i; sleep 0.005; done'];
const EXPECTED = Array.from({ length: 500 }, (_v, i) => String(i + 1));

type User = Awaited<ReturnType<TestServer['user']>>;

describe.each(PROVIDERS)('subscriptions on %s', (provider) => {
  let s: TestServer;
  const open: WsClient[] = [];
  const connect = (token: string | null) => {
    const c = wsClient(s, token);
    open.push(c);
    return c;
  };

  // Two operators for the whole suite (creating users is slow: argon2).
  let op: User;
  let other: User;

  beforeAll(async () => {
    s = await startServer(provider);
    [op, other] = await Promise.all([s.user('operator'), s.user('operator')]);
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.dispose()));
    await s?.stop();
  });

  it('jobLog: from the start, from halfway, and across a reconnect, every line once and in order', async () => {
    const job = await submit(s, op.token, { command: COUNT_TO_500 });
    const a = connect(op.token);
    let startedHalfway: ReturnType<typeof track<Chunk>> | null = null;
    let resumed: ReturnType<typeof track<Chunk>> | null = null;
    const b = connect(op.token);
    const c1 = connect(op.token);

    // The third subscriber leaves after ~100 lines and comes back with `after` = its last seq.
    let leftAt: number | null = null;
    const firstLeg = track<Chunk>(c1.client, JOB_LOG, { id: job.id }, (_v, all) => {
      if (leftAt === null && linesOf(all).length >= 100) {
        leftAt = all.at(-1)!.seq;
        void c1.dispose();
      }
    });

    const first = track<Chunk>(a.client, JOB_LOG, { id: job.id }, (_v, all) => {
      if (!startedHalfway && linesOf(all).length >= 250) startedHalfway = track<Chunk>(b.client, JOB_LOG, { id: job.id });
    });

    await waitFor(() => leftAt !== null, 30_000);
    const c2 = connect(op.token);
    resumed = track<Chunk>(c2.client, JOB_LOG, { id: job.id, after: leftAt });

    expect(await withTimeout(first.done, 60_000, 'first subscriber')).toBe('complete');
    await waitFor(() => startedHalfway !== null);
    expect(await withTimeout(startedHalfway!.done, 60_000, 'halfway subscriber')).toBe('complete');
    expect(await withTimeout(resumed.done, 60_000, 'resumed subscriber')).toBe('complete');

    const seqs = (chunks: Chunk[]) => chunks.map((c) => c.seq);
    for (const t of [first, startedHalfway!]) {
      expect(t.errors).toEqual([]);
      expect(linesOf(t.values)).toEqual(EXPECTED);
      expect(seqs(t.values)).toEqual(Array.from({ length: t.values.length }, (_v, i) => i + 1));
      expect(t.values.every((c) => c.stream === 'STDOUT' && !Number.isNaN(Date.parse(c.at)))).toBe(true);
    }
    // The first leg may have received a chunk or two in flight after leaving: only count up to leftAt.
    const leg1 = firstLeg.values.filter((c) => c.seq <= leftAt!);
    expect(resumed.errors).toEqual([]);
    expect(resumed.values[0]!.seq).toBe(leftAt! + 1);
    expect(linesOf([...leg1, ...resumed.values])).toEqual(EXPECTED);
    expect(seqs([...leg1, ...resumed.values])).toEqual(seqs(first.values));

    const logs = await getLogs(s, op.token, job.id);
    expect(first.values.map((c) => c.data).join('')).toBe(logs.stdout);
  });

  it('jobLog on a finished job replays everything and completes; `after` skips what was seen', async () => {
    const job = await submit(s, op.token, { command: ['sh', '-c', 'echo out; echo err >&2; echo out2'] });
    await waitTerminal(s, op.token, job.id);
    const c = connect(op.token);
    const all = track<Chunk>(c.client, JOB_LOG, { id: job.id });
    expect(await withTimeout(all.done, 30_000, 'replay')).toBe('complete');
    const logs = await getLogs(s, op.token, job.id);
    expect(all.values.filter((v) => v.stream === 'STDOUT').map((v) => v.data).join('')).toBe(logs.stdout);
    expect(all.values.filter((v) => v.stream === 'STDERR').map((v) => v.data).join('')).toBe(logs.stderr);
    const lastSeq = all.values.at(-1)!.seq;
    const none = track<Chunk>(c.client, JOB_LOG, { id: job.id, after: lastSeq });
    expect(await withTimeout(none.done, 30_000, 'after the end')).toBe('complete');
    expect(none.values).toEqual([]);
  });

  it('jobUpdated: the job now, RUNNING, then SUCCESS or FAILED, then completes', async () => {
    const c = connect(op.token);
    for (const [command, final, exitCode] of [
      [['sh', '-c', 'sleep 0.5'], 'SUCCESS', 0],
      [['sh', '-c', 'sleep 0.5; false'], 'FAILED', 1],
    ] as const) {
      const job = await submit(s, op.token, { command: [...command] });
      const t = track<{ id: string; status: string; exitCode: number | null }>(c.client, JOB_UPDATED, { id: job.id });
      expect(await withTimeout(t.done, 30_000, 'jobUpdated')).toBe('complete');
      const statuses = t.values.map((v) => v.status);
      expect([['PENDING', 'RUNNING', final], ['RUNNING', final]]).toContainEqual(statuses);
      expect(t.values.at(-1)).toEqual({ id: job.id, status: final, exitCode });
    }
  });

  it('jobUpdated on a terminal job sends it once and completes', async () => {
    const job = await submit(s, op.token, { command: ['true'] });
    await waitTerminal(s, op.token, job.id);
    const t = track(connect(op.token).client, JOB_UPDATED, { id: job.id });
    expect(await withTimeout(t.done, 30_000, 'jobUpdated')).toBe('complete');
    expect(t.values).toEqual([{ id: job.id, status: 'SUCCESS', exitCode: 0 }]);
  });

  /** Resolves once the server holds `n` more bus listeners than `before` (the subscriptions are live). */
  const live = (before: number, n = 1) => waitFor(() => s.app.bus.listenerCount() >= before + n, 10_000, 5);

  it('jobEvents: every job of the caller reaches a terminal state, nobody else\'s jobs', async () => {
    const me = op;
    const mine = connect(me.token);
    const before = s.app.bus.listenerCount();
    const t = track<{ id: string; status: string; ownerId: string }>(mine.client, JOB_EVENTS, {});
    await live(before);

    const foreign = await submit(s, other.token, { command: ['true'] });
    await waitTerminal(s, other.token, foreign.id);
    const jobs = await Promise.all([0, 1, 2].map((i) => submit(s, me.token, { command: ['sh', '-c', `sleep 0.${i + 1}; exit ${i}`] })));
    const want = new Map(jobs.map((j, i) => [j.id, i === 0 ? 'SUCCESS' : 'FAILED']));
    await waitFor(() => [...want].every(([id, status]) => t.values.some((v) => v.id === id && v.status === status)), 30_000);

    expect(t.errors).toEqual([]);
    expect(t.values.every((v) => v.ownerId === me.id)).toBe(true);
    expect(t.values.some((v) => v.id === foreign.id)).toBe(false);
    // Each job's statuses arrive in lifecycle order, without repeats.
    const order = ['PENDING', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED'];
    for (const id of want.keys()) {
      const seen = t.values.filter((v) => v.id === id).map((v) => order.indexOf(v.status));
      expect(seen).toEqual([...new Set(seen)].sort((x, y) => x - y));
    }
    t.stop();
  });

  it('jobEvents(batchId): only that batch\'s jobs; an admin sees other users\' jobs; a stranger gets NOT_FOUND', async () => {
    // Jobs cannot see DATA_DIR (issue #11): the gate is where they can.
    const gate = jobGate();
    const make = async (n: number) => {
      const jobs = Array.from({ length: n }, (_v, i) => ({ name: `j${i}`, command: ['sh', '-c', `while [ ! -e '${gate}' ]; do sleep 0.05; done`] }));
      const res = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'b', jobs } });
      expect(res.status).toBe(201);
      return res.body as { id: string; jobs: { id: string }[] };
    };
    // The batch must exist to subscribe to it: its jobs wait for the gate until both subscriptions are live.
    // Three jobs, not four: with every worker slot busy, a wake() can stall dispatch (engine/worker.ts).
    const batch = await make(2);
    const second = await make(1);
    const before = s.app.bus.listenerCount();
    const t = track<{ id: string; status: string; batchId: string }>(connect(op.token).client, JOB_EVENTS, { batchId: batch.id });
    const all = track<{ id: string; status: string; batchId: string }>(connect(s.adminToken).client, JOB_EVENTS, {});
    await live(before, 2);
    writeFileSync(gate, 'go');
    await waitFor(() => batch.jobs.every((j) => t.values.some((v) => v.id === j.id && v.status === 'SUCCESS')), 30_000);
    await waitFor(() => [...batch.jobs, ...second.jobs].every((j) => all.values.some((v) => v.id === j.id && v.status === 'SUCCESS')), 30_000);
    expect(t.errors).toEqual([]);
    expect(t.values.every((v) => v.batchId === batch.id)).toBe(true);
    t.stop();
    all.stop();

    const stranger = other;
    const denied = track(connect(stranger.token).client, JOB_EVENTS, { batchId: batch.id });
    await withTimeout(denied.done, 30_000, 'denied');
    expect(denied.values).toEqual([]);
    expect(denied.errors.map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
  });

  it('a job the caller may not see: NOT_FOUND and no events, on every subscription', async () => {
    const [owner, stranger] = [op, other];
    const job = await submit(s, owner.token, { command: ['sh', '-c', 'echo secret; sleep 0.3'] });
    const c = connect(stranger.token);
    for (const [query, variables] of [
      [JOB_LOG, { id: job.id }],
      [JOB_UPDATED, { id: job.id }],
      [JOB_LOG, { id: 'not-a-uuid' }],
    ] as const) {
      const t = track(c.client, query, variables);
      await withTimeout(t.done, 30_000, 'denied');
      expect(t.values).toEqual([]);
      expect(t.errors.map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
    }
    // The connection itself is fine: its own jobs still work.
    const own = await submit(s, stranger.token, { command: ['echo', 'mine'] });
    const t = track<Chunk>(c.client, JOB_LOG, { id: own.id });
    expect(await withTimeout(t.done, 30_000, 'own job')).toBe('complete');
    expect(linesOf(t.values)).toEqual(['mine']);
  });

  it('no token, a bad token, an expired token: the socket closes with 4403', async () => {
    const secret = new TextEncoder().encode(s.env.JWT_SECRET);
    const me = op;
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(me.id)
      .setIssuer('jobrunner')
      .setAudience('jobrunner-api')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 120)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(secret);
    const cases: [string | null, string][] = [
      [null, 'Forbidden'],
      ['not-a-jwt', 'Forbidden: malformed token'],
      [expired, 'Forbidden: token expired'],
      [me.token.slice(0, -4) + 'AAAA', 'Forbidden: invalid token'],
    ];
    for (const [token, reason] of cases) {
      const c = connect(token);
      const closed = await withTimeout(c.closed, 10_000, `close for ${String(token).slice(0, 12)}`);
      expect(closed).toEqual({ code: 4403, reason });
    }
  });

  it('a token that expires while connected closes the socket with 4403', async () => {
    const me = op;
    // Of the user's live session: only the expiry differs from their real token.
    const soon = await new SignJWT({ sid: decodeJwt(me.token).sid })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(me.id)
      .setIssuer('jobrunner')
      .setAudience('jobrunner-api')
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
      .sign(new TextEncoder().encode(s.env.JWT_SECRET));
    const c = connect(soon);
    const job = await submit(s, me.token, { command: ['sleep', '30'] });
    const t = track(c.client, JOB_UPDATED, { id: job.id });
    await waitFor(() => t.values.length > 0);
    const closed = await withTimeout(c.closed, 10_000, 'expiry close');
    expect(closed.code).toBe(4403);
    expect(closed.reason).toMatch(/expired/);
    await s.request('POST', `/jobs/${job.id}/cancel`, { token: me.token });
  });
});
