import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { Scope } from './policy.js';
import type { Role } from './validation.js';

/** What every service gets: no HTTP, no GraphQL. */
export interface ServiceDeps {
  readonly db: Database;
  readonly config: Config;
  readonly log: Logger;
}

/**
 * The authenticated caller (the principal), read on every request through
 * caches that every change of the user, session or token invalidates, on
 * every process. The role is the user's current one.
 */
export interface Viewer {
  readonly id: string;
  readonly email: string;
  readonly role: Role;
  /** null for a password session (the role's full rights); an API token's scopes otherwise. */
  readonly scopes: readonly Scope[] | null;
  /** The password session this request came with, if any. */
  readonly sessionId: string | null;
  /** The API token this request came with, if any. */
  readonly tokenId: string | null;
  /** Where the request came from (for the audit trail). */
  readonly address: string;
}
