// What an operator on call asks first (admins only): the queue, the workers
// and their leases, and how this process isolates jobs. Stored output per
// user is the storage report (services/retention.ts), not repeated here.
// The queue figures are also what the metrics export (metrics/state.ts).
import type { Database } from '../db/client.js';
import type { IsolationReport } from '../engine/isolation.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { authorize } from './policy.js';

export interface QueueDepth {
  pending: number;
  running: number;
  /** When the longest-waiting pending job was submitted; null when none waits. */
  oldestPendingAt: Date | null;
}

export interface WorkerLease {
  id: string;
  hostname: string;
  pid: number;
  startedAt: Date;
  heartbeatAt: Date;
  leaseExpiresAt: Date;
  /** Past its lease and not reaped yet: another worker settles its jobs soon. */
  expired: boolean;
  /** Jobs the database has running on it. */
  running: number;
}

export interface SystemStatus {
  version: string;
  database: Database['provider'];
  queue: QueueDepth;
  workers: WorkerLease[];
  /** This process's isolation (GET /admin/isolation); null when it runs no jobs. */
  isolation: IsolationReport | null;
}

/** Pending and running jobs over the status index, and the oldest waiting one. */
export async function readQueueDepth(db: Database): Promise<QueueDepth> {
  const [byStatus, oldest] = await Promise.all([
    db.prisma.job.groupBy({ by: ['status'], where: { status: { in: ['pending', 'running'] } }, _count: { _all: true } }),
    db.prisma.job.findFirst({ where: { status: 'pending' }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { createdAt: true } }),
  ]);
  const count = (s: string) => byStatus.find((r) => r.status === s)?._count._all ?? 0;
  return { pending: count('pending'), running: count('running'), oldestPendingAt: oldest?.createdAt ?? null };
}

/** Every registered worker with its lease, oldest first; `now` is this process's clock (leases are set on the database's). */
export async function readWorkerLeases(db: Database, now = new Date()): Promise<WorkerLease[]> {
  const [workers, running] = await Promise.all([
    db.prisma.worker.findMany({ orderBy: [{ startedAt: 'asc' }, { id: 'asc' }] }),
    db.prisma.job.groupBy({ by: ['workerId'], where: { status: 'running' }, _count: { _all: true } }),
  ]);
  const runningOn = new Map(running.map((r) => [r.workerId, r._count._all]));
  return workers.map((w) => ({
    id: w.id,
    hostname: w.hostname,
    pid: w.pid,
    startedAt: w.startedAt,
    heartbeatAt: w.heartbeatAt,
    leaseExpiresAt: w.leaseExpiresAt,
    expired: w.leaseExpiresAt.getTime() < now.getTime(),
    running: runningOn.get(w.id) ?? 0,
  }));
}

export function createStatusService({ db }: ServiceDeps, version: string, isolation: () => IsolationReport | null) {
  return {
    async status(viewer: Viewer): Promise<SystemStatus> {
      authorize(viewer, 'system.read');
      const [queue, workers] = await Promise.all([readQueueDepth(db), readWorkerLeases(db)]);
      return { version, database: db.provider, queue, workers, isolation: isolation() };
    },
  };
}
