// Worker registry and leases. Each worker has a row whose lease it renews
// every heartbeat, on the database's clock. A worker whose lease ran out
// more than a margin ago is dead to the cluster: by then its spawner helper
// has killed its jobs on its own (the worker renews the helper's lease only
// after renewing its own), so others may act. Its jobs are settled: one that
// never started goes back to pending, one a cancel or force-complete was
// waiting on gets that outcome, any other fails with "worker lost". Its row
// is deleted; renewal never re-creates it, so a reaped worker learns it was
// reaped and cannot write about those jobs again (every write names the
// attempt, see runRecords.ts).
import { hostname } from 'node:os';
import type { Database } from '../db/client.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../logger.js';
import type { FinalState } from '../services/jobs.js';
import { killProcessGroup } from './runner.js';

const WORKER_LOST = 'worker lost';

/** A running job of a worker as the database has it. */
interface OwnedRun {
  id: string;
  attempt: number;
  stopRequest: FinalState | null;
}

interface Lease {
  leaseMs: number;
  /** How long past a lease's end the reaper waits: covers the helper's watchdog and clock rate differences. */
  marginMs: number;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseStopRequest(text: string | null): FinalState | null {
  return text ? (JSON.parse(text) as FinalState) : null;
}

// PostgreSQL's clock, in the UTC the TIMESTAMP(3) columns hold.
const DB_NOW = `(now() AT TIME ZONE 'UTC')`;

export function createLiveness(db: Database, bus: EventBus, log: Logger, lease: Lease) {
  const prisma = db.prisma;
  const host = hostname();
  const pg = db.provider === 'postgresql';

  /** Settles every running job of the given workers (see the header); kills their groups when they ran on this host. */
  async function settleJobsOf(workerIds: string[], sameHost: Set<string>) {
    if (workerIds.length === 0) return;
    const jobs = await prisma.job.findMany({
      where: { status: 'running', workerId: { in: workerIds } },
      select: { id: true, attempt: true, pid: true, workerId: true, ownerId: true, batchId: true, stopRequest: true, _count: { select: { chunks: true } } },
    });
    for (const job of jobs) {
      if (job.pid && sameHost.has(job.workerId!)) {
        try {
          killProcessGroup(job.pid, 'SIGKILL');
        } catch {
          /* pid <= 1 is refused; nothing to kill */
        }
      }
      const fence = { id: job.id, attempt: job.attempt, status: 'running' };
      const requested = parseStopRequest(job.stopRequest);
      let status: string;
      if (requested) {
        await prisma.job.updateMany({ where: fence, data: { ...requested, finishedAt: new Date(), pid: null, stopRequest: null } });
        status = requested.status;
      } else if (!job.pid && job._count.chunks === 0) {
        const { count } = await prisma.job.updateMany({ where: { ...fence, pid: null }, data: { status: 'pending', startedAt: null, workerId: null } });
        if (count) log.warn('job requeued: its worker was lost before starting it', { jobId: job.id, workerId: job.workerId, attempt: job.attempt });
        status = count ? 'pending' : '';
      } else {
        const { count } = await prisma.job.updateMany({ where: fence, data: { status: 'failed', error: WORKER_LOST, finishedAt: new Date(), pid: null } });
        if (count) log.warn('job failed: worker lost', { jobId: job.id, workerId: job.workerId, attempt: job.attempt });
        status = count ? 'failed' : '';
      }
      if (!status) continue;
      bus.publish('job.changed', { jobId: job.id, ownerId: job.ownerId, batchId: job.batchId, status }, job.id);
    }
    if (jobs.length) bus.publish('dispatch.wake', {});
    await prisma.worker.deleteMany({ where: { id: { in: workerIds } } });
  }

  /** Running jobs naming a worker that has no row (its claim committed after it was reaped, or a row lost). */
  async function strayWorkerIds(): Promise<string[]> {
    const known = new Set((await prisma.worker.findMany({ select: { id: true } })).map((w) => w.id));
    const strays = await prisma.job.findMany({ where: { status: 'running' }, select: { workerId: true }, distinct: ['workerId'] });
    return strays.map((s) => s.workerId ?? '').filter((id) => !known.has(id));
  }

  async function expiredWorkers(selfId: string): Promise<{ id: string; hostname: string }[]> {
    if (pg) {
      return prisma.$queryRawUnsafe(`SELECT id, hostname FROM workers WHERE lease_expires_at < ${DB_NOW} - $1 * interval '1 millisecond' AND id <> $2`, lease.marginMs, selfId);
    }
    return prisma.worker.findMany({ where: { leaseExpiresAt: { lt: new Date(Date.now() - lease.marginMs) }, id: { not: selfId } }, select: { id: true, hostname: true } });
  }

  return {
    async register(workerId: string) {
      if (pg) {
        await prisma.$executeRawUnsafe(
          `INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at, lease_expires_at) VALUES ($1, $2, $3, ${DB_NOW}, ${DB_NOW}, ${DB_NOW} + $4 * interval '1 millisecond')
           ON CONFLICT (id) DO NOTHING`,
          workerId, host, process.pid, lease.leaseMs,
        );
      } else {
        await prisma.worker.create({ data: { id: workerId, hostname: host, pid: process.pid, leaseExpiresAt: new Date(Date.now() + lease.leaseMs) } });
      }
    },

    /** Extends the lease; false when the row is gone: this worker was reaped and must not act on its old jobs. */
    async renew(workerId: string): Promise<boolean> {
      if (pg) {
        const n = await prisma.$executeRawUnsafe(
          `UPDATE workers SET heartbeat_at = ${DB_NOW}, lease_expires_at = ${DB_NOW} + $2 * interval '1 millisecond' WHERE id = $1`,
          workerId, lease.leaseMs,
        );
        return n > 0;
      }
      const { count } = await prisma.worker.updateMany({ where: { id: workerId }, data: { heartbeatAt: new Date(), leaseExpiresAt: new Date(Date.now() + lease.leaseMs) } });
      return count > 0;
    },

    /** What the database says runs on this worker, with any stop asked for. */
    async owned(workerId: string): Promise<OwnedRun[]> {
      const rows = await prisma.job.findMany({ where: { workerId, status: 'running' }, select: { id: true, attempt: true, stopRequest: true } });
      return rows.map((r) => ({ id: r.id, attempt: r.attempt, stopRequest: parseStopRequest(r.stopRequest) }));
    },

    /**
     * At start-up: earlier workers of this host whose process is gone (and, on
     * SQLite, which one process owns, every other worker) are dead now.
     */
    async reconcileOnStart(selfId: string) {
      const others = await prisma.worker.findMany({ where: { id: { not: selfId } } });
      const dead = others.filter((w) => db.provider === 'sqlite' || (w.hostname === host && !processAlive(w.pid)));
      await settleJobsOf(dead.map((w) => w.id), new Set(dead.filter((w) => w.hostname === host).map((w) => w.id)));
      await settleJobsOf(await strayWorkerIds(), new Set());
    },

    /** Periodically, on every live worker: settles the jobs of workers whose lease ran out. */
    async reap(selfId: string) {
      const expired = await expiredWorkers(selfId);
      await settleJobsOf(expired.map((w) => w.id), new Set(expired.filter((w) => w.hostname === host).map((w) => w.id)));
      await settleJobsOf((await strayWorkerIds()).filter((id) => id !== selfId), new Set());
    },

    async unregister(workerId: string) {
      await prisma.worker.deleteMany({ where: { id: workerId } });
    },
  };
}
