// Picks the next jobs to run: never more than a user's limit running across
// all workers, each user's jobs in submission order, free slots dealt
// round-robin across users (least recently served first) so one user's
// backlog never starves another's. Every claim starts a new attempt
// (attempt = attempt + 1), so writes from an earlier attempt can be told apart.
//
// On PostgreSQL many workers claim at once and nothing cluster-wide is held
// exclusively: a worker takes a transaction-scoped advisory lock per user it
// means to claim for, with pg_try_advisory_xact_lock, and re-counts that
// user's running jobs under the lock before taking (see PG_TAKE_SQL). Workers
// claiming for different users run side by side; a user another worker is
// claiming for right now is skipped, and its share of the slots goes to the
// other users.
import type { Database } from '../db/client.js';
import { sqliteTime } from '../db/insertRows.js';
import type { DirectSqlite } from '../db/sqliteAdapter.js';
import { jobFromRow } from '../db/sqliteRows.js';
import type { Job } from '../generated/sqlite/client.js';

// Advisory lock keys. Per-user locks use the two-int4 form
// (CLAIM_LOCK, hashtext(owner id)); the one-bigint form of CLAIM_LOCK is the
// cluster-wide lock that claims took before per-user locks, which a claim now
// takes in shared mode only (see PG_TRY_LOCK_SQL). The two forms are separate
// lock spaces in PostgreSQL, so they never collide.
const CLAIM_LOCK = 727_071_001;

export interface ClaimOptions {
  workerId: string;
  slots: number;
  defaultLimit: number;
  fairness: Fairness;
}

/** Round-robin memory: owner id -> the turn at which this worker last served them. */
export class Fairness {
  readonly lastServed = new Map<string, number>();
  private turn = 0;
  served(ownerId: string) {
    this.lastServed.set(ownerId, ++this.turn);
  }
}

export function allocate(
  owners: { ownerId: string; capacity: number; oldest: number }[],
  slots: number,
  lastServed: Map<string, number>,
): Map<string, number> {
  const order = owners
    .filter((o) => o.capacity > 0)
    .sort((a, b) => (lastServed.get(a.ownerId) ?? -1) - (lastServed.get(b.ownerId) ?? -1) || a.oldest - b.oldest);
  const take = new Map<string, number>();
  let left = slots;
  while (left > 0) {
    let progressed = false;
    for (const o of order) {
      if (left === 0) break;
      const n = take.get(o.ownerId) ?? 0;
      if (n < o.capacity) {
        take.set(o.ownerId, n + 1);
        left--;
        progressed = true;
      }
    }
    if (!progressed) break;
  }
  return take;
}

// Per active user: the oldest pending job and how many run. One index seek
// each (owner_id, status, created_at), so a pass costs the same however long
// the queue is.
const OWNERS_SQL = `
  SELECT u.id AS owner_id, u.max_concurrent_jobs AS max_jobs,
    (SELECT j.created_at FROM jobs j WHERE j.owner_id = u.id AND j.status = 'pending' ORDER BY j.created_at, j.id LIMIT 1) AS oldest,
    (SELECT COUNT(*) FROM jobs j WHERE j.owner_id = u.id AND j.status = 'running') AS running
  FROM users u WHERE u.is_active`;

interface OwnerRow {
  owner_id: string;
  max_jobs: number | bigint | null;
  oldest: Date | string | null;
  running: number | bigint;
}

function ownersFrom(rows: OwnerRow[], defaultLimit: number) {
  return rows
    .filter((o) => o.oldest !== null)
    .map((o) => ({
      ownerId: o.owner_id,
      capacity: Number(o.max_jobs ?? defaultLimit) - Number(o.running),
      oldest: new Date(o.oldest!).getTime(),
    }));
}

const byCreation = (a: Job, b: Job) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Claims up to `slots` jobs and returns them, marked running on this worker, in submission order. */
export async function claimJobs(db: Database, opts: ClaimOptions): Promise<Job[]> {
  if (opts.slots <= 0) return [];
  return db.direct ? claimOnSqlite(db.direct, opts) : claimOnPostgres(db, opts);
}

// One process owns a SQLite database: the whole claim is one synchronous transaction.
function claimOnSqlite(direct: DirectSqlite, opts: ClaimOptions): Promise<Job[]> {
  return direct.transaction((sql) => {
    const owners = ownersFrom(sql(OWNERS_SQL).all() as OwnerRow[], opts.defaultLimit);
    const now = sqliteTime(new Date());
    const claimed: Job[] = [];
    for (const [ownerId, n] of allocate(owners, opts.slots, opts.fairness.lastServed)) {
      // Ids first (a covering-index seek), then each row by its key: cheaper
      // than UPDATE ... WHERE id IN (subquery), and nothing else can run in between.
      const ids = sql(`SELECT id FROM jobs WHERE owner_id = ? AND status = 'pending' ORDER BY created_at, id LIMIT ?`).pluck().all(ownerId, n) as string[];
      const take = sql(`UPDATE jobs SET status = 'running', started_at = ?, worker_id = ?, attempt = attempt + 1 WHERE id = ? RETURNING *`);
      for (const id of ids) claimed.push(jobFromRow(take.get(now, opts.workerId, id) as Record<string, unknown>));
      opts.fairness.served(ownerId);
    }
    return claimed.sort(byCreation);
  });
}

// Locks, without waiting, the users of $1 (a JSON array of owner ids) that no
// other claim holds; returns those it got. Never waiting means no deadlock
// and no queue of workers behind a busy user.
// The same statement takes the cluster-wide claim lock in shared mode: claims
// never wait for each other on it, but a worker of an older version (which
// takes it exclusively, and no per-user lock) cannot claim at the same time
// as this one, so caps hold during a rolling upgrade too. (Such a worker never
// waits for a per-user lock, so waiting for it here cannot deadlock.)
// It also reports the transaction's isolation level: see claimRoundOnPostgres.
const PG_TRY_LOCK_SQL = `
  SELECT o AS owner_id, current_setting('transaction_isolation') AS isolation
  FROM (SELECT pg_advisory_xact_lock_shared(${CLAIM_LOCK}::bigint)) gate, json_array_elements_text($1::json) o
  WHERE pg_try_advisory_xact_lock(${CLAIM_LOCK}, hashtext(o))`;

// Takes, for each locked user of $3 (JSON [{owner_id, want}]), up to `want`
// of their oldest pending jobs but never more than their limit minus what
// runs now. Must run in a statement after the locks were taken: under READ
// COMMITTED each statement reads a fresh snapshot, and PostgreSQL releases a
// transaction's locks only after its commit is visible, so the running count
// read here includes every claim for this user that held the lock before.
// Only claims change a job to 'running', and each holds the user's lock while
// it does, so nothing can add a running job for the user between this count
// and our commit: running + taken <= limit holds at every instant. (Jobs that
// finish meanwhile only make the count err on the safe side.) The limit is
// read here too, so a change made since the owners query applies.
// SKIP LOCKED: a pending row another transaction is changing (a cancel) is
// passed over rather than waited for.
const PG_TAKE_SQL = `
  UPDATE jobs j SET status = 'running', started_at = $1, worker_id = $2, attempt = j.attempt + 1
  FROM (
    SELECT p.id FROM json_to_recordset($3::json) AS w(owner_id text, want int)
    JOIN users u ON u.id = w.owner_id AND u.is_active
    CROSS JOIN LATERAL (
      SELECT q.id FROM jobs q WHERE q.owner_id = w.owner_id AND q.status = 'pending'
      ORDER BY q.created_at, q.id
      LIMIT GREATEST(0, LEAST(w.want,
        COALESCE(u.max_concurrent_jobs, $4::int) - (SELECT COUNT(*) FROM jobs r WHERE r.owner_id = w.owner_id AND r.status = 'running')))
      FOR UPDATE OF q SKIP LOCKED
    ) p
  ) picked
  WHERE j.id = picked.id
  RETURNING j.*`;

// A claimed row as PostgreSQL returns it: real booleans where SQLite has 0/1,
// otherwise the same columns, so the SQLite mapper (which fails to compile
// when a column is missing) serves both.
const jobFromPgRow = (r: Record<string, unknown>): Job =>
  jobFromRow(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'boolean' ? Number(v) : v])));

// A round that skipped a busy user and left slots unused is tried again this
// many times in all, a few ms apart: the other worker's claim is a short
// transaction, and the worker would otherwise leave the slots idle until its
// next wake-up (up to a second when none of its own jobs finish).
const PG_ROUNDS = 3;
const PG_RETRY_MS = 3;

async function claimOnPostgres(db: Database, opts: ClaimOptions): Promise<Job[]> {
  const claimed: Job[] = [];
  for (let round = 1; ; round++) {
    const { jobs, skipped } = await claimRoundOnPostgres(db, { ...opts, slots: opts.slots - claimed.length });
    claimed.push(...jobs);
    if (skipped === 0 || claimed.length >= opts.slots || round >= PG_ROUNDS) break;
    await new Promise((r) => setTimeout(r, PG_RETRY_MS * round));
  }
  return claimed.sort(byCreation);
}

// The cap check needs READ COMMITTED (a fresh snapshot per statement, see
// PG_TAKE_SQL). That is PostgreSQL's default; a database configured with
// another default_transaction_isolation is seen at its first claim (the
// try-lock statement reports the level) and from then on every claim
// transaction on it sets READ COMMITTED, at one more round trip.
class NotReadCommitted extends Error {}
const setsReadCommitted = new WeakSet<Database>();

/** One claim: plan from a lock-free read, lock the planned users that are free (re-planning without the others), take under the locks. */
async function claimRoundOnPostgres(db: Database, opts: ClaimOptions): Promise<{ jobs: Job[]; skipped: number }> {
  // Outside the transaction: only a plan, checked again under the locks; a
  // pass with nothing to claim (most safety polls) costs this one query.
  const owners = ownersFrom(await db.prisma.$queryRawUnsafe<OwnerRow[]>(OWNERS_SQL), opts.defaultLimit);
  if (allocate(owners, opts.slots, opts.fairness.lastServed).size === 0) return { jobs: [], skipped: 0 };
  const explicit = setsReadCommitted.has(db);
  try {
    return await db.prisma.$transaction(
      async (tx) => {
        const locked = new Set<string>();
        const skipped = new Set<string>();
        let plan = new Map<string, number>();
        // Each turn locks at least one more user or skips one, so this ends.
        for (;;) {
          plan = allocate(owners.filter((o) => !skipped.has(o.ownerId)), opts.slots, opts.fairness.lastServed);
          const toLock = [...plan.keys()].filter((id) => !locked.has(id));
          if (toLock.length === 0) break;
          const rows = await tx.$queryRawUnsafe<{ owner_id: string; isolation: string }[]>(PG_TRY_LOCK_SQL, JSON.stringify(toLock));
          if (rows.length && rows[0]!.isolation !== 'read committed') throw new NotReadCommitted(rows[0]!.isolation);
          const got = new Set(rows.map((r) => r.owner_id));
          for (const id of toLock) (got.has(id) ? locked : skipped).add(id);
        }
        if (plan.size === 0) return { jobs: [], skipped: skipped.size };
        const wants = [...plan].map(([owner_id, want]) => ({ owner_id, want }));
        const rows = await tx.$queryRawUnsafe<Record<string, unknown>[]>(PG_TAKE_SQL, new Date(), opts.workerId, JSON.stringify(wants), opts.defaultLimit);
        // Served in the plan's order (who was due first), and only if something was taken.
        const taken = new Set(rows.map((r) => r.owner_id as string));
        for (const ownerId of plan.keys()) if (taken.has(ownerId)) opts.fairness.served(ownerId);
        return { jobs: rows.map(jobFromPgRow), skipped: skipped.size };
      },
      // (The model API is typed by the SQLite client, which knows no other level.)
      explicit ? { isolationLevel: 'ReadCommitted' as never } : undefined,
    );
  } catch (err) {
    if (!(err instanceof NotReadCommitted) || explicit) throw err;
    // Thrown before anything was taken, and the transaction rolled back.
    setsReadCommitted.add(db);
    return claimRoundOnPostgres(db, opts);
  }
}
