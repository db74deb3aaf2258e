import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { Role } from './validation.js';

/** What every service gets: no HTTP, no GraphQL. */
export interface ServiceDeps {
  readonly db: Database;
  readonly config: Config;
  readonly log: Logger;
}

/** The authenticated caller, read on every request (through a cache that every change of the user row invalidates, on every process). */
export interface Viewer {
  readonly id: string;
  readonly email: string;
  readonly role: Role;
}
