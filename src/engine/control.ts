// JobControl for the services: stop a running job here if this process runs
// it, else ask its worker over the bus and wait for the outcome. The stop is
// first recorded on the job (jobs.stop_request), which the owning worker
// reads at its next lease renewal, so a stop reaches a worker cut off from
// the bus too; the wait therefore watches both the bus and the job's row,
// and ends after `waitMs` whatever happened. Until the worker records the
// outcome the job stays running, and its owner's slot taken.
import type { Database } from '../db/client.js';
import type { EventBus } from '../events/bus.js';
import type { FinalState, JobControl } from '../services/jobs.js';
import { isTerminal } from '../services/jobSpec.js';
import type { Worker } from './worker.js';

const ROW_CHECK_MS = 500;

export function createJobControl(db: Database, bus: EventBus, worker: Worker | null, waitMs: number): JobControl {
  const ended = async (jobId: string) => {
    const job = await db.prisma.job.findUnique({ where: { id: jobId }, select: { status: true } }).catch(() => null);
    return !job || isTerminal(job.status);
  };
  return {
    wake() {
      if (worker) worker.wake();
      else bus.publish('dispatch.wake', {});
    },
    async stop(jobId: string, final: FinalState) {
      const { count } = await db.prisma.job.updateMany({ where: { id: jobId, status: 'running' }, data: { stopRequest: JSON.stringify(final) } });
      if (count === 0) return;
      if (worker && (await worker.stopLocal(jobId, final))) return;
      await new Promise<void>((resolve) => {
        const deadline = setTimeout(done, waitMs);
        const off = bus.subscribe('job.changed', (e) => isTerminal(e.status) && done(), jobId);
        const check = setInterval(() => void ended(jobId).then((yes) => yes && done()), ROW_CHECK_MS);
        function done() {
          clearTimeout(deadline);
          clearInterval(check);
          off();
          resolve();
        }
        bus.publish('job.control', { jobId, action: final.status === 'canceled' ? 'cancel' : 'force', final });
        // It may have ended before we listened.
        void ended(jobId).then((yes) => yes && done());
      });
    },
  };
}
