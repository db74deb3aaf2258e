// Picks the next jobs to run: never more than a user's limit running across
// all workers, each user's jobs in submission order, free slots dealt
// round-robin across users (least recently served first) so one user's
// backlog never starves another's. On PostgreSQL the whole claim holds a
// transaction-scoped advisory lock (per-user caps are global) and each
// user's take is one UPDATE ... FOR UPDATE SKIP LOCKED.
import type { Database } from '../db/client.js';
import { sqliteTime } from '../db/insertJobs.js';
import type { DirectSqlite } from '../db/sqliteAdapter.js';
import { jobFromRow } from '../db/sqliteRows.js';
import type { Job } from '../generated/sqlite/client.js';

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
      const take = sql(`UPDATE jobs SET status = 'running', started_at = ?, worker_id = ? WHERE id = ? RETURNING *`);
      for (const id of ids) claimed.push(jobFromRow(take.get(now, opts.workerId, id) as Record<string, unknown>));
      opts.fairness.served(ownerId);
    }
    return claimed.sort(byCreation);
  });
}

// Many workers claim at once: the advisory lock keeps per-user caps global, SKIP LOCKED keeps takes apart.
async function claimOnPostgres(db: Database, opts: ClaimOptions): Promise<Job[]> {
  return db.prisma.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${CLAIM_LOCK})`);
    const owners = ownersFrom(await tx.$queryRawUnsafe<OwnerRow[]>(OWNERS_SQL), opts.defaultLimit);
    if (owners.length === 0) return [];
    const claimed: string[] = [];
    const now = new Date();
    for (const [ownerId, n] of allocate(owners, opts.slots, opts.fairness.lastServed)) {
      const rows = await tx.$queryRawUnsafe<{ id: string }[]>(
        `UPDATE jobs SET status = 'running', started_at = $1, worker_id = $2
         WHERE id IN (SELECT id FROM jobs WHERE owner_id = $3 AND status = 'pending'
                      ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        now, opts.workerId, ownerId, n,
      );
      claimed.push(...rows.map((r) => r.id));
      opts.fairness.served(ownerId);
    }
    if (claimed.length === 0) return [];
    return tx.job.findMany({ where: { id: { in: claimed } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  });
}
