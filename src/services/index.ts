import type { TokenIssuer } from '../auth/tokens.js';
import type { IsolationReport } from '../engine/isolation.js';
import type { EventBus } from '../events/bus.js';
import { createAuthService } from './auth.js';
import { createBatchService } from './batches.js';
import type { ServiceDeps } from './deps.js';
import { createHealthService } from './health.js';
import { createJobService, type JobControl } from './jobs.js';
import { createLimitsService } from './limits.js';
import { createLiveService } from './live.js';
import { createUserService } from './users.js';

export interface ServiceWiring {
  bus: EventBus;
  control: JobControl;
  pingRedis: (() => Promise<boolean>) | null;
  version: string;
  /** The isolation this process's jobs get, as its spawner reported it; null when it runs no jobs. */
  isolation: () => IsolationReport | null;
}

export function createServices(deps: ServiceDeps, tokens: TokenIssuer, wiring: ServiceWiring) {
  // Limits or a user's activity changed: the scheduler re-evaluates at once.
  const rescheduled = () => wiring.control.wake();
  const jobs = createJobService(deps, wiring.bus, wiring.control);
  const batches = createBatchService(deps, wiring.bus, wiring.control);
  return {
    auth: createAuthService(deps, tokens, wiring.bus),
    users: createUserService(deps, rescheduled, (userId) => wiring.bus.publish('user.changed', { userId })),
    limits: createLimitsService(deps, wiring.bus, rescheduled),
    jobs,
    batches,
    live: createLiveService(deps, wiring.bus, { jobs, batches }),
    health: createHealthService(deps, wiring.version, wiring.pingRedis, wiring.isolation),
  };
}

export type Services = ReturnType<typeof createServices>;
