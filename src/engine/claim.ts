// Picks the next jobs to run: never more than a user's limit running across
// all workers, each user's jobs in submission order, free slots dealt
// round-robin across users (least recently served first) so one user's
// backlog never starves another's. On PostgreSQL the whole claim holds a
// transaction-scoped advisory lock (per-user caps are global) and each
// user's take is one UPDATE ... FOR UPDATE SKIP LOCKED.
import type { Database } from '../db/client.js';
import { sqliteTime } from '../db/insertJobs.js';
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

/** Claims up to `slots` jobs and returns them, marked running on this worker, in submission order. */
export async function claimJobs(db: Database, opts: ClaimOptions): Promise<Job[]> {
  if (opts.slots <= 0) return [];
  const pg = db.provider === 'postgresql';
  return db.prisma.$transaction(async (tx) => {
    if (pg) await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${CLAIM_LOCK})`);
    const owners = (await tx.$queryRawUnsafe<OwnerRow[]>(OWNERS_SQL))
      .filter((o) => o.oldest !== null)
      .map((o) => ({
        ownerId: o.owner_id,
        capacity: Number(o.max_jobs ?? opts.defaultLimit) - Number(o.running),
        oldest: new Date(o.oldest!).getTime(),
      }));
    if (owners.length === 0) return [];
    const plan = allocate(owners, opts.slots, opts.fairness.lastServed);

    const claimed: string[] = [];
    const now = new Date();
    for (const [ownerId, n] of plan) {
      // PostgreSQL: other workers may claim at the same time; SQLite: one process owns the file.
      const rows = pg
        ? await tx.$queryRawUnsafe<{ id: string }[]>(
            `UPDATE jobs SET status = 'running', started_at = $1, worker_id = $2
             WHERE id IN (SELECT id FROM jobs WHERE owner_id = $3 AND status = 'pending'
                          ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id`,
            now, opts.workerId, ownerId, n,
          )
        : await tx.$queryRawUnsafe<{ id: string }[]>(
            `UPDATE jobs SET status = 'running', started_at = ?, worker_id = ?
             WHERE id IN (SELECT id FROM jobs WHERE owner_id = ? AND status = 'pending' ORDER BY created_at, id LIMIT ?)
             RETURNING id`,
            sqliteTime(now), opts.workerId, ownerId, n,
          );
      claimed.push(...rows.map((r) => r.id));
      opts.fairness.served(ownerId);
    }
    if (claimed.length === 0) return [];
    return tx.job.findMany({ where: { id: { in: claimed } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  });
}
