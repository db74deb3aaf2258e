import type { TokenIssuer } from '../auth/tokens.js';
import type { IsolationReport } from '../engine/isolation.js';
import type { EventBus } from '../events/bus.js';
import { createApiTokenService } from './apiTokens.js';
import { createAuditService } from './audit.js';
import { createAuthService } from './auth.js';
import { createBatchService } from './batches.js';
import type { ServiceDeps } from './deps.js';
import { createHealthService } from './health.js';
import { createJobService, type JobControl } from './jobs.js';
import { createLimitsService } from './limits.js';
import { createLiveService } from './live.js';
import { createLogQuota } from './logQuota.js';
import { createLogRemoval } from './logRemoval.js';
import { createRetentionService } from './retention.js';
import { createSessionStore } from './sessions.js';
import { createStatusService } from './status.js';
import { createUserService } from './users.js';

export interface ServiceWiring {
  bus: EventBus;
  control: JobControl;
  /** The default concurrency limit, as the worker reads it (services/limits.ts). */
  defaultLimit: () => Promise<number>;
  pingRedis: (() => Promise<boolean>) | null;
  version: string;
  /** The isolation this process's jobs get, as its spawner reported it; null when it runs no jobs. */
  isolation: () => IsolationReport | null;
}

export function createServices(deps: ServiceDeps, tokens: TokenIssuer, wiring: ServiceWiring) {
  const { bus, control } = wiring;
  // Limits or a user's activity changed: the scheduler re-evaluates at once.
  const rescheduled = () => control.wake();
  const audit = createAuditService(deps);
  const sessions = createSessionStore(deps, bus);
  const apiTokens = createApiTokenService(deps, bus, audit);
  const auth = createAuthService(deps, tokens, bus, { sessions, apiTokens, audit });
  const logRemoval = createLogRemoval(deps.db, deps.config.retention.batchRows);
  const quota = createLogQuota(deps, logRemoval);
  const jobs = createJobService(deps, bus, control, audit, quota);
  const batches = createBatchService(deps, bus, control, audit, quota);
  return {
    auth,
    apiTokens,
    audit,
    users: createUserService(deps, { onLimitsChange: rescheduled, sessions, audit }),
    limits: createLimitsService(deps, bus, { defaultLimit: wiring.defaultLimit, onChange: rescheduled, audit }),
    jobs,
    batches,
    live: createLiveService(deps, bus, { jobs, batches, auth }),
    retention: createRetentionService(deps, logRemoval, audit),
    health: createHealthService(deps, wiring.version, wiring.pingRedis, wiring.isolation),
    status: createStatusService(deps, wiring.version, wiring.isolation),
  };
}

export type Services = ReturnType<typeof createServices>;
