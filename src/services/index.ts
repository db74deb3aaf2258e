import type { TokenIssuer } from '../auth/tokens.js';
import { createAuthService } from './auth.js';
import type { ServiceDeps } from './deps.js';
import { createHealthService } from './health.js';
import { createLimitsService } from './limits.js';
import { createUserService } from './users.js';

export interface ServiceHooks {
  /** Limits or user activity changed: the scheduler re-evaluates at once. */
  onLimitsChange(): void;
  pingRedis: (() => Promise<boolean>) | null;
  version: string;
}

export function createServices(deps: ServiceDeps, tokens: TokenIssuer, hooks: ServiceHooks) {
  return {
    auth: createAuthService(deps, tokens),
    users: createUserService(deps, hooks.onLimitsChange),
    limits: createLimitsService(deps, hooks.onLimitsChange),
    health: createHealthService(deps, hooks.version, hooks.pingRedis),
  };
}

export type Services = ReturnType<typeof createServices>;
