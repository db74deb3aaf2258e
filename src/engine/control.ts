// JobControl for the services: stop a running job here if this process runs
// it, else ask the other workers over the bus and wait for the outcome.
import type { Database } from '../db/client.js';
import type { EventBus } from '../events/bus.js';
import type { FinalState, JobControl } from '../services/jobs.js';
import { isTerminal } from '../services/jobSpec.js';
import type { Worker } from './worker.js';

export function createJobControl(db: Database, bus: EventBus, worker: Worker | null, waitMs: number): JobControl {
  return {
    wake() {
      if (worker) worker.wake();
      else bus.publish('dispatch.wake', {});
    },
    async stop(jobId: string, final: FinalState) {
      if (worker && (await worker.stopLocal(jobId, final))) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        const off = bus.subscribe('job.changed', (e) => isTerminal(e.status) && done(), jobId);
        function done() {
          clearTimeout(timer);
          off();
          resolve();
        }
        bus.publish('job.control', { jobId, action: final.status === 'canceled' ? 'cancel' : 'force', final });
        // It may have ended before we listened.
        void db.prisma.job.findUnique({ where: { id: jobId }, select: { status: true } }).then((j) => (!j || isTerminal(j.status)) && done());
      });
    },
  };
}
