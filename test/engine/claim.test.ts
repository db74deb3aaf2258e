// Claims under concurrency on real PostgreSQL: six claimers, each with its own
// database handle (its own connection pool, as separate worker processes
// have), drain a queue of three users with limits 1, 2 and 3 (the last one
// through the default limit). Per-user caps must hold at every instant,
// every job must be claimed exactly once, as attempt 1, and each user's jobs
// must start in submission order; also on a database whose default isolation
// is not READ COMMITTED. Plus: every claim is a new attempt, on both providers.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { claimJobs, Fairness } from '../../src/engine/claim.js';
import { createTestDatabase, PROVIDERS, type Provider, type TestDatabase } from '../helpers/db.js';

const CLAIMERS = 6;
const JOBS_PER_USER = 100;
const DEFAULT_LIMIT = 3;
// The third user has no limit of its own: DEFAULT_LIMIT applies.
const USERS = [
  { id: 'u-cap1', cap: 1, column: 1 },
  { id: 'u-cap2', cap: 2, column: 2 },
  { id: 'u-cap3', cap: 3, column: null },
] as const;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function target(provider: Provider, t: TestDatabase) {
  return provider === 'postgresql' ? { provider, url: t.url } : { provider, file: t.url.slice('file:'.length) };
}

async function seedUsers(db: Database) {
  for (const u of USERS) {
    await db.prisma.user.create({ data: { id: u.id, email: `${u.id}@example.com`, passwordHash: 'x', role: 'operator', maxConcurrentJobs: u.column } });
  }
}

async function seedJobs(db: Database, perUser: number) {
  // Interleaved submissions, one millisecond apart, so submission order is total.
  const t0 = Date.now() - 3_600_000;
  const data = Array.from({ length: perUser * USERS.length }, (_, i) => ({
    id: `job-${String(i).padStart(5, '0')}`,
    name: `j${i}`,
    command: '["true"]',
    env: '{}',
    workingDir: '/tmp',
    status: 'pending',
    ownerId: USERS[i % USERS.length]!.id,
    createdAt: new Date(t0 + i),
  }));
  await db.prisma.job.createMany({ data });
  return data.length;
}

// The second case: a database whose default isolation is REPEATABLE READ,
// under which the cap check would read a stale count; claims must notice and
// set READ COMMITTED themselves.
describe.each([
  { label: 'PostgreSQL', isolation: null },
  { label: 'PostgreSQL with default_transaction_isolation = repeatable read', isolation: 'repeatable read' },
])('claims on $label with many concurrent claimers', ({ isolation }) => {
  let t: TestDatabase;
  let setup: Database;
  const claimers: Database[] = [];

  beforeAll(async () => {
    t = await createTestDatabase('postgresql');
    if (isolation) {
      const admin = new pg.Client({ connectionString: t.url });
      await admin.connect();
      await admin.query(`ALTER DATABASE "${new URL(t.url).pathname.slice(1)}" SET default_transaction_isolation = '${isolation}'`);
      const { rows } = await admin.query('SHOW default_transaction_isolation');
      await admin.end();
      // Settings of a database apply to sessions opened after the change (not this one).
      expect(rows[0].default_transaction_isolation).toBe('read committed');
    }
    setup = await openDatabase({ provider: 'postgresql', url: t.url });
    if (isolation) expect(await setup.prisma.$queryRawUnsafe<{ i: string }[]>(`SELECT current_setting('transaction_isolation') AS i`)).toEqual([{ i: isolation }]);
    for (let i = 0; i < CLAIMERS; i++) claimers.push(await openDatabase({ provider: 'postgresql', url: t.url }));
  });

  afterAll(async () => {
    await Promise.all(claimers.map((c) => c.close()));
    await setup?.close();
    await t?.drop();
  });

  it('caps hold at every claim, every job is claimed exactly once as attempt 1, in submission order per user', async () => {
    await seedUsers(setup);
    const total = await seedJobs(setup, JOBS_PER_USER);
    const cap = new Map<string, number>(USERS.map((u) => [u.id, u.cap]));

    // Jobs a claimer holds: added when its claim returns, removed before the
    // finish is written. A job in here is 'running' in the database, so more
    // than the cap in here means more than the cap ran at once.
    const held = new Map<string, Set<string>>(USERS.map((u) => [u.id, new Set()]));
    const claimedBy = new Map<string, number>();
    const violations: string[] = [];
    const maxHeld = new Map<string, number>(USERS.map((u) => [u.id, 0]));
    const maxRunningInDb = new Map<string, number>(USERS.map((u) => [u.id, 0]));
    let rounds = 0;
    const finishing: Promise<unknown>[] = [];

    async function finish(db: Database, ownerId: string, jobId: string) {
      // A few ms of "running", so claims overlap with running jobs.
      await sleep(Math.random() * 4);
      held.get(ownerId)!.delete(jobId);
      await db.prisma.job.update({ where: { id: jobId }, data: { status: 'success', finishedAt: new Date(), exitCode: 0 } });
    }

    async function claimLoop(index: number) {
      const db = claimers[index]!;
      const fairness = new Fairness();
      const workerId = `claimer-${index}`;
      while (claimedBy.size < total) {
        const slots = 1 + Math.floor(Math.random() * 4);
        const jobs = await claimJobs(db, { workerId, slots, defaultLimit: DEFAULT_LIMIT, fairness });
        rounds++;
        expect(jobs.length).toBeLessThanOrEqual(slots);
        for (const job of jobs) {
          if (claimedBy.has(job.id)) violations.push(`${job.id} claimed by claimer-${claimedBy.get(job.id)} and again by ${workerId}`);
          claimedBy.set(job.id, index);
          if (job.status !== 'running' || job.workerId !== workerId || job.attempt !== 1) {
            violations.push(`${job.id} came back as ${job.status} on ${job.workerId}, attempt ${job.attempt}`);
          }
          const mine = held.get(job.ownerId)!;
          mine.add(job.id);
          maxHeld.set(job.ownerId, Math.max(maxHeld.get(job.ownerId)!, mine.size));
          if (mine.size > cap.get(job.ownerId)!) violations.push(`${job.ownerId} held ${mine.size} jobs at once (cap ${cap.get(job.ownerId)})`);
        }
        // What the database says runs right now, after this claim round.
        const running = await db.prisma.$queryRawUnsafe<{ owner_id: string; n: bigint }[]>(
          `SELECT owner_id, COUNT(*) AS n FROM jobs WHERE status = 'running' GROUP BY owner_id`,
        );
        for (const r of running) {
          const n = Number(r.n);
          maxRunningInDb.set(r.owner_id, Math.max(maxRunningInDb.get(r.owner_id)!, n));
          if (n > cap.get(r.owner_id)!) violations.push(`${r.owner_id} had ${n} jobs running in the database (cap ${cap.get(r.owner_id)})`);
        }
        for (const job of jobs) finishing.push(finish(db, job.ownerId, job.id));
        if (jobs.length === 0) await sleep(1);
      }
    }

    const started = Date.now();
    await Promise.all(Array.from({ length: CLAIMERS }, (_, i) => claimLoop(i)));
    await Promise.all(finishing);

    expect(violations).toEqual([]);
    expect(claimedBy.size).toBe(total);
    // Every claimer took part, and every user was pushed to its limit (so the caps were really tested).
    expect(new Set(claimedBy.values()).size).toBe(CLAIMERS);
    for (const u of USERS) {
      expect(maxHeld.get(u.id), `${u.id}: most jobs held at once`).toBe(u.cap);
      expect(maxRunningInDb.get(u.id), `${u.id}: most jobs running in the database`).toBeLessThanOrEqual(u.cap);
    }

    const rows = await setup.prisma.job.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    expect(rows).toHaveLength(total);
    expect(rows.filter((r) => r.status !== 'success')).toEqual([]);
    expect(rows.filter((r) => r.attempt !== 1).map((r) => `${r.id}: attempt ${r.attempt}`)).toEqual([]);
    expect(rows.filter((r) => r.workerId !== `claimer-${claimedBy.get(r.id)}`)).toEqual([]);
    // Each user's claims are serialized by their lock, and the next claim reads
    // its start time after the previous one committed: in submission order,
    // started_at never goes back (equal within a millisecond is fine).
    for (const u of USERS) {
      const mine = rows.filter((r) => r.ownerId === u.id);
      const backwards = mine.filter((r, i) => i > 0 && r.startedAt!.getTime() < mine[i - 1]!.startedAt!.getTime());
      expect(backwards.map((r) => r.id), `${u.id}: started before an earlier submission`).toEqual([]);
    }
    console.log(
      `claim test: ${total} jobs, ${CLAIMERS} claimers, ${rounds} claim rounds in ${Date.now() - started} ms; most held at once per user: ${USERS.map((u) => `${u.id} ${maxHeld.get(u.id)}`).join(', ')}`,
    );
  });
});

describe.each(PROVIDERS)('claims on %s', (provider) => {
  let t: TestDatabase;
  let db: Database;

  beforeAll(async () => {
    t = await createTestDatabase(provider);
    db = await openDatabase(target(provider, t));
    await seedUsers(db);
  });

  afterAll(async () => {
    await db?.close();
    await t?.drop();
  });

  it('each claim is a new attempt: a job put back to pending is claimed again as attempt 2', async () => {
    await db.prisma.job.create({
      data: { id: 'again', name: 'again', command: '["true"]', env: '{}', workingDir: '/tmp', status: 'pending', ownerId: USERS[0].id },
    });
    const fairness = new Fairness();
    const [first] = await claimJobs(db, { workerId: 'w1', slots: 2, defaultLimit: DEFAULT_LIMIT, fairness });
    expect(first).toMatchObject({ id: 'again', status: 'running', workerId: 'w1', attempt: 1 });
    expect(first!.startedAt).toBeInstanceOf(Date);
    // Nothing else is pending, and the user's one slot is taken.
    expect(await claimJobs(db, { workerId: 'w2', slots: 2, defaultLimit: DEFAULT_LIMIT, fairness: new Fairness() })).toEqual([]);

    await db.prisma.job.update({ where: { id: 'again' }, data: { status: 'pending', workerId: null, startedAt: null } });
    const [second] = await claimJobs(db, { workerId: 'w2', slots: 2, defaultLimit: DEFAULT_LIMIT, fairness: new Fairness() });
    expect(second).toMatchObject({ id: 'again', status: 'running', workerId: 'w2', attempt: 2 });
    expect((await db.prisma.job.findUniqueOrThrow({ where: { id: 'again' } })).attempt).toBe(2);
  });
});
