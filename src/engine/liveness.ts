// Worker registry: each worker process has a row and heartbeats it. A job
// whose worker stopped heartbeating (or, on this host, whose process is gone)
// is failed with "worker lost" and its orphaned process group is killed.
import { hostname } from 'node:os';
import type { Database } from '../db/client.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../logger.js';
import { killProcessGroup } from './runner.js';

export const WORKER_LOST = 'worker lost';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function createLiveness(db: Database, bus: EventBus, log: Logger, workerId: string, heartbeatMs: number) {
  const prisma = db.prisma;
  const host = hostname();

  /** Fails every running job of the given dead workers; kills their groups when they ran on this host. */
  async function failJobsOf(deadWorkerIds: string[], sameHost: Set<string>) {
    if (deadWorkerIds.length === 0) return;
    const jobs = await prisma.job.findMany({ where: { status: 'running', workerId: { in: deadWorkerIds } }, select: { id: true, pid: true, workerId: true, ownerId: true, batchId: true } });
    for (const job of jobs) {
      if (job.pid && sameHost.has(job.workerId!)) {
        try {
          killProcessGroup(job.pid, 'SIGKILL');
        } catch {
          /* pid <= 1 is refused; nothing to kill */
        }
      }
      const { count } = await prisma.job.updateMany({ where: { id: job.id, status: 'running' }, data: { status: 'failed', error: WORKER_LOST, finishedAt: new Date(), pid: null } });
      if (count) {
        log.warn('job failed: worker lost', { jobId: job.id, workerId: job.workerId });
        bus.publish('job.changed', { jobId: job.id, ownerId: job.ownerId, batchId: job.batchId, status: 'failed' }, job.id);
      }
    }
    await prisma.worker.deleteMany({ where: { id: { in: deadWorkerIds } } });
  }

  return {
    async register() {
      await prisma.worker.create({ data: { id: workerId, hostname: host, pid: process.pid } });
    },

    async heartbeat() {
      await prisma.worker.upsert({ where: { id: workerId }, create: { id: workerId, hostname: host, pid: process.pid }, update: { heartbeatAt: new Date() } });
    },

    /**
     * At start-up: earlier workers of this host whose process is gone (and, on
     * SQLite, which one process owns, every other worker) are dead now.
     */
    async reconcileOnStart() {
      const others = await prisma.worker.findMany({ where: { id: { not: workerId } } });
      const dead = others.filter((w) => db.provider === 'sqlite' || (w.hostname === host && !processAlive(w.pid)));
      await failJobsOf(dead.map((w) => w.id), new Set(dead.filter((w) => w.hostname === host).map((w) => w.id)));
      // Running jobs that name no registered worker at all.
      const known = new Set((await prisma.worker.findMany({ select: { id: true } })).map((w) => w.id));
      const strays = await prisma.job.findMany({ where: { status: 'running' }, select: { workerId: true }, distinct: ['workerId'] });
      await failJobsOf(strays.map((s) => s.workerId ?? '').filter((id) => !known.has(id)), new Set());
    },

    /** Periodically, on every live node: workers silent for three heartbeats are dead. */
    async reap() {
      const cutoff = new Date(Date.now() - 3 * heartbeatMs);
      const stale = await prisma.worker.findMany({ where: { heartbeatAt: { lt: cutoff }, id: { not: workerId } } });
      await failJobsOf(stale.map((w) => w.id), new Set(stale.filter((w) => w.hostname === host).map((w) => w.id)));
    },

    async unregister() {
      await prisma.worker.deleteMany({ where: { id: workerId } });
    },
  };
}
