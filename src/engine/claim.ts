// Picks the next jobs to run: never more than a user's limit running across
// all workers, each user's jobs in submission order, free slots dealt
// round-robin across users (least recently served first) so one user's
// backlog never starves another's. On PostgreSQL the whole claim holds a
// transaction-scoped advisory lock (per-user caps are global) and each
// user's take is one UPDATE ... FOR UPDATE SKIP LOCKED.
import type { Database } from '../db/client.js';

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

export async function claimJobs(db: Database, opts: ClaimOptions): Promise<string[]> {
  if (opts.slots <= 0) return [];
  return db.prisma.$transaction(async (tx) => {
    if (db.provider === 'postgresql') await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${CLAIM_LOCK})`);
    const pending = await tx.job.groupBy({ by: ['ownerId'], where: { status: 'pending' }, _min: { createdAt: true } });
    if (pending.length === 0) return [];
    const ownerIds = pending.map((p) => p.ownerId);
    const [running, users] = await Promise.all([
      tx.job.groupBy({ by: ['ownerId'], where: { status: 'running', ownerId: { in: ownerIds } }, _count: { _all: true } }),
      tx.user.findMany({ where: { id: { in: ownerIds }, isActive: true }, select: { id: true, maxConcurrentJobs: true } }),
    ]);
    const runningBy = new Map(running.map((r) => [r.ownerId, r._count._all]));
    const limitBy = new Map(users.map((u) => [u.id, u.maxConcurrentJobs ?? opts.defaultLimit]));
    const owners = pending
      .filter((p) => limitBy.has(p.ownerId))
      .map((p) => ({
        ownerId: p.ownerId,
        capacity: limitBy.get(p.ownerId)! - (runningBy.get(p.ownerId) ?? 0),
        oldest: p._min.createdAt?.getTime() ?? 0,
      }));
    const plan = allocate(owners, opts.slots, opts.fairness.lastServed);

    const claimed: string[] = [];
    const now = new Date();
    for (const [ownerId, n] of plan) {
      if (db.provider === 'postgresql') {
        const rows = await tx.$queryRawUnsafe<{ id: string }[]>(
          `UPDATE jobs SET status = 'running', started_at = $1, worker_id = $2
           WHERE id IN (SELECT id FROM jobs WHERE owner_id = $3 AND status = 'pending'
                        ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
           RETURNING id`,
          now, opts.workerId, ownerId, n,
        );
        claimed.push(...rows.map((r) => r.id));
      } else {
        // One process owns a SQLite database: select-then-update cannot race.
        const ids = (await tx.job.findMany({ where: { ownerId, status: 'pending' }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: n, select: { id: true } })).map((r) => r.id);
        await tx.job.updateMany({ where: { id: { in: ids } }, data: { status: 'running', startedAt: now, workerId: opts.workerId } });
        claimed.push(...ids);
      }
      opts.fairness.served(ownerId);
    }
    return claimed;
  });
}
