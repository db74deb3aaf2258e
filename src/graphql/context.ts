import type { Logger } from '../logger.js';
import type { Services } from '../services/index.js';
import type { Viewer } from '../services/deps.js';
import { NotAuthenticated } from '../errors.js';
import type { Db } from '../db/client.js';

/** Built per operation, for HTTP, WebSocket and REST alike (see server/contextFactory.ts). */
export interface Context {
  readonly services: Services;
  readonly prisma: Db;
  readonly viewer: Viewer | null;
  /** Why the bearer token given was refused (RFC 6750 error_description); null when none was given or it was good. */
  readonly authProblem: string | null;
  readonly clientAddress: string;
  readonly log: Logger;
}

/** No principal: says why when a bearer token was given but refused (expired, revoked, …). */
export function notAuthenticated(ctx: Context): NotAuthenticated {
  return new NotAuthenticated(ctx.authProblem ? `Not authenticated: ${ctx.authProblem}` : undefined);
}

export function requireViewer(ctx: Context): Viewer {
  if (!ctx.viewer) throw notAuthenticated(ctx);
  return ctx.viewer;
}
