// Output under load (SQLite only): 200 concurrent jobLog subscribers on a job
// writing ~10 MB all receive every byte, with bounded memory; and a consumer
// far slower than the job still gets every chunk once, in order, through
// the fall-back to the database when its live buffer overflows.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { freePort, getLogs, jobGate, resetPeakRss, rssMiB, spawnServer, submit, waitTerminal, type SpawnedServer } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startServer, testServerEnv, waitFor, type TestServer } from '../helpers/server.js';
import { JOB_LOG, track, withTimeout, wsClient, type Chunk, type WsClient } from '../helpers/ws.js';
import { createLiveService, type LogChunk } from '../../src/services/live.js';
import type { Database } from '../../src/db/client.js';

// The real server (`src/main.ts serve`) in its own process, so the figure is
// the server's own peak RSS as the kernel counts it, without the 200 clients'
// garbage in this process and without sampling.
describe('live output under load on sqlite, server in its own process', () => {
  let db: TestDatabase;
  let srv: SpawnedServer;
  let token: string;

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    srv = await spawnServer(testServerEnv(db, { PORT: String(await freePort()) }));
    token = await srv.token(ADMIN_EMAIL, ADMIN_PASSWORD);
  }, 90_000);
  afterAll(async () => {
    if (srv && srv.child.exitCode === null && srv.child.signalCode === null) {
      srv.child.kill('SIGTERM');
      await srv.exited;
    }
    await db?.drop();
  });

  it('200 concurrent jobLog subscribers of a 10 MB job all get the full output; server memory stays bounded', async () => {
    // Jobs cannot see DATA_DIR (issue #11): the gate is where they can.
    const gate = jobGate('load');
    // "ready", then 7,500,000 random bytes as base64: 10,000,000 characters plus 131,579 newlines (under MAX_LOG_BYTES).
    const job = await submit(srv, token, { command: ['sh', '-c', `echo ready; while [ ! -e '${gate}' ]; do sleep 0.05; done; head -c 7500000 /dev/urandom | base64`] });

    // 40 connections x 5 subscriptions (the per-user limit is 50 connections).
    const url = new URL(srv.api).origin;
    const clients: WsClient[] = Array.from({ length: 40 }, () => wsClient({ url }, token));
    interface Sub { hash: ReturnType<typeof createHash>; bytes: number; next: number; bad: string | null; t: ReturnType<typeof track<Chunk>> | null }
    const subs: Sub[] = [];
    for (const c of clients) {
      for (let k = 0; k < 5; k++) {
        const sub: Sub = { hash: createHash('sha256'), bytes: 0, next: 1, bad: null, t: null };
        sub.t = track<Chunk>(c.client, JOB_LOG, { id: job.id }, (chunk, all) => {
          if (chunk.seq !== sub.next && !sub.bad) sub.bad = `expected seq ${sub.next}, got ${chunk.seq}`;
          sub.next = chunk.seq + 1;
          sub.hash.update(chunk.data);
          sub.bytes += chunk.data.length;
          all.length = 0; // keep nothing: 200 copies of 10 MB would swamp this process
        });
        subs.push(sub);
      }
    }
    // A subscriber that has "ready" listens live (it listens before it replays).
    await waitFor(() => subs.every((x) => x.bytes > 0), 30_000);

    // Half the connections stop reading while the job writes: their
    // subscribers must wait without the server queueing 10 MB for each.
    const stalled = await Promise.all(clients.filter((_c, i) => i % 2 === 0).map((c) => c.socket));
    for (const ws of stalled) ws.pause();

    const pid = srv.child.pid!;
    resetPeakRss(pid);
    const before = rssMiB(pid).now;
    writeFileSync(gate, 'go');
    // Until the job ends, but well within the server's keep-alive (12 s), which drops sockets that take nothing.
    await waitTerminal(srv, token, job.id, 8_000).catch(() => null);
    for (const ws of stalled) ws.resume();
    await withTimeout(Promise.all(subs.map((x) => x.t!.done)), 150_000, '200 subscribers');
    const growthMiB = rssMiB(pid).peak - before;
    console.log(`200 subscribers x 10 MB: server peak RSS growth ${growthMiB.toFixed(0)} MiB`);

    // A subscriber takes the next chunk only once its previous message was
    // written to its socket, and live chunks are shared between subscribers,
    // each holding at most its capped buffer and one replay page. Measured:
    // 95-151 MiB. With graphql-ws changed to not wait for the write, the
    // server queued the stalled subscribers' output: 1.3 GiB.
    expect(growthMiB).toBeLessThan(400);
    const done = await waitTerminal(srv, token, job.id);
    expect(done.status).toBe('success');
    const logs = await getLogs(srv, token, job.id);
    expect(logs.stdout.length).toBe(6 + 10_131_579);
    expect(logs.stdout_truncated).toBe(false);
    const want = createHash('sha256').update(logs.stdout).digest('hex');
    for (const sub of subs) {
      expect(sub.t!.errors).toEqual([]);
      expect(sub.bad).toBeNull();
      expect(sub.bytes).toBe(logs.stdout.length);
      expect(sub.hash.digest('hex')).toBe(want);
    }
    await Promise.all(clients.map((c) => c.dispose()));
  }, 180_000);
});

describe('live output under load on sqlite', () => {
  let s: TestServer;
  let op: Awaited<ReturnType<TestServer['user']>>;

  beforeAll(async () => {
    s = await startServer('sqlite');
    op = await s.user('operator');
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('a plain-text stream reader that stops reading for a while still gets every byte', async () => {
    const job = await submit(s, op.token, { command: ['sh', '-c', 'head -c 7500000 /dev/urandom | base64'] });
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      httpGet(`${s.api}/jobs/${job.id}/logs/stream`, { headers: { authorization: `Bearer ${op.token}` } }, resolve).on('error', reject),
    );
    expect(res.statusCode).toBe(200);
    const hash = createHash('sha256');
    let bytes = 0;
    const ended = new Promise<void>((resolve) => res.on('end', resolve));
    res.on('data', (b: Buffer) => {
      hash.update(b);
      bytes += b.length;
    });
    // Stall with the socket buffers full while the job writes the rest, then read on.
    await waitFor(() => bytes > 0);
    res.pause();
    await waitTerminal(s, op.token, job.id);
    await new Promise((r) => setTimeout(r, 500));
    res.resume();
    await withTimeout(ended, 60_000, 'stream end');
    const logs = await getLogs(s, op.token, job.id);
    expect(bytes).toBe(Buffer.byteLength(logs.stdout));
    expect(hash.digest('hex')).toBe(createHash('sha256').update(logs.stdout).digest('hex'));
  });

  it('a consumer much slower than the job still gets every chunk once, in order (buffer overflow falls back to the database)', async () => {
    let reads = 0;
    const prisma = s.app.db.prisma;
    const counted = {
      prisma: {
        job: prisma.job,
        jobLogChunk: { findMany: (args: Parameters<typeof prisma.jobLogChunk.findMany>[0]) => (reads++, prisma.jobLogChunk.findMany(args)) },
      },
    } as unknown as Database;
    // Tiny limits: two 64 Ki chunks overflow the buffer.
    const live = createLiveService({ db: counted }, s.app.bus, s.app.services, { replayPage: 3, replayPageChars: 200_000, maxBufferedChunks: 4, maxBufferedChars: 100_000 });
    const gate = jobGate('slow');
    const job = await submit(s, op.token, { command: ['sh', '-c', `while [ ! -e '${gate}' ]; do sleep 0.05; done; seq 1 150000; for i in $(seq 1 20); do echo tail $i; sleep 0.01; done`] });
    const viewer = { id: op.id, email: op.email, role: 'operator' as const, scopes: null, sessionId: null, tokenId: null, address: '127.0.0.1' };
    const chunks = await live.followLog(viewer, job.id);
    writeFileSync(gate, 'go');
    const got: LogChunk[] = [];
    for await (const c of chunks) {
      got.push(c);
      if (got.length < 12) await new Promise((r) => setTimeout(r, 150));
    }
    const logs = await getLogs(s, op.token, job.id);
    expect(got.map((c) => c.seq)).toEqual(got.map((_c, i) => i + 1));
    expect(got.map((c) => c.data).join('')).toBe(logs.stdout);
    expect(logs.stdout.endsWith('tail 20\n')).toBe(true);
    // More reads than the first replay and the final one: the overflow went back to the database.
    expect(reads).toBeGreaterThan(4);
  });
});
