// Where the CLI finds its server and token: --server, then JOBRUNNER_SERVER /
// JOBRUNNER_TOKEN, then the per-user config file written by `login`
// (JOBRUNNER_CONFIG, else $XDG_CONFIG_HOME/jobrunner/config.json, else
// ~/.config/jobrunner/config.json; mode 0600 in a 0700 directory).
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError, UsageError } from './errors.js';

const DEFAULT_SERVER = 'http://localhost:8000';
const DEFAULT_PREFIX = '/api/v1';

export interface StoredLogin {
  server: string;
  token: string;
  /** `api`: an API token (`token_id` names it); `session`: a session token that expires with the session. */
  token_kind: 'api' | 'session';
  token_id?: string | null;
  email: string;
  expires_at?: string | null;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.JOBRUNNER_CONFIG) return env.JOBRUNNER_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'jobrunner', 'config.json');
}

export function readLogin(path = configPath()): StoredLogin | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as StoredLogin;
    if (typeof parsed.server === 'string' && typeof parsed.token === 'string') return parsed;
  } catch {
    // fall through
  }
  throw new CliError(`${path} is not a jobrunner login: remove it and run \`jobrunner login\``);
}

/** Writes the login atomically, readable by its owner only. */
export function writeLogin(login: StoredLogin, path = configPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(login, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600); // an existing file keeps its mode through writeFileSync
  renameSync(tmp, path);
}

export function removeLogin(path = configPath()): boolean {
  try {
    rmSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The API base URL for a server URL: `http://host:8000` gets the default
 * prefix `/api/v1`; a URL with a path (`https://host/jobs/api/v1`) is taken as is.
 */
export function apiBase(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UsageError(`--server ${JSON.stringify(server)} is not a URL: use e.g. ${DEFAULT_SERVER}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server ${JSON.stringify(server)}: use an http:// or https:// URL`);
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${path || DEFAULT_PREFIX}`;
}

export interface Target {
  /** The server as the user named it (for messages and the config file). */
  server: string;
  token: string | null;
  /** The stored login the token came from, when it did. */
  login: StoredLogin | null;
}

/** The server and token a command uses. A token from the file is used only for the server it was issued by. */
export function resolveTarget(flagServer: string | undefined, env: NodeJS.ProcessEnv = process.env): Target {
  const login = readLogin(configPath(env));
  const server = flagServer ?? env.JOBRUNNER_SERVER ?? login?.server ?? DEFAULT_SERVER;
  if (env.JOBRUNNER_TOKEN) return { server, token: env.JOBRUNNER_TOKEN, login: null };
  const sameServer = login !== null && apiBase(login.server) === apiBase(server);
  return { server, token: sameServer ? login.token : null, login: sameServer ? login : null };
}
