// The only reader of process.env. Every variable is validated once at
// start-up; a wrong value stops the process with one line naming it.
import { cpus } from 'node:os';
import { isAbsolute, resolve, join } from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly apiPrefix: string;
  readonly dataDir: string;
  readonly database: { readonly provider: 'sqlite'; readonly file: string } | { readonly provider: 'postgresql'; readonly url: string };
  readonly redisUrl: string | null;
  readonly jwtSecret: string | null;
  readonly jwtTtlSeconds: number;
  readonly adminEmail: string;
  readonly adminPassword: string;
  readonly defaultMaxConcurrentJobs: number;
  readonly workerConcurrency: number;
  readonly jobsAllowedRoots: readonly string[];
  readonly maxLogBytes: number;
  readonly maxBodyBytes: number;
  readonly logLevel: LogLevel;
  readonly killGraceMs: number;
  readonly shutdownGraceMs: number;
  readonly heartbeatMs: number;
  /** Which helper starts jobs: the native one when built (auto), or the one named. */
  readonly spawner: 'auto' | 'native' | 'node';
}

export const DEFAULT_ADMIN_PASSWORD = 'ChangeMe123!';

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got ${raw})`);
  return n;
}

function str(env: Env, name: string, def: string): string {
  const raw = env[name];
  return raw === undefined || raw === '' ? def : raw;
}

function database(env: Env, dataDir: string): Config['database'] {
  const url = env.DATABASE_URL;
  if (!url) return { provider: 'sqlite', file: join(dataDir, 'jobrunner.db') };
  if (/^postgres(ql)?:\/\//.test(url)) {
    try { new URL(url); } catch { throw new ConfigError('DATABASE_URL must be a valid postgresql:// URL or file:<path>'); }
    return { provider: 'postgresql', url };
  }
  if (url.startsWith('file:')) {
    const file = url.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
    if (!file) throw new ConfigError('DATABASE_URL file: URL needs a path, e.g. file:./data/jobrunner.db');
    return { provider: 'sqlite', file: resolve(file) };
  }
  throw new ConfigError('DATABASE_URL must start with postgresql://, postgres:// or file: (got another scheme)');
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(str(env, 'DATA_DIR', './data'));
  const prefix = str(env, 'API_PREFIX', '/api/v1');
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) {
    throw new ConfigError(`API_PREFIX must be a path like /api/v1 without a trailing slash (got ${JSON.stringify(prefix)})`);
  }
  const redisUrl = env.REDIS_URL || null;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) throw new ConfigError('REDIS_URL must start with redis:// or rediss://');
  const jwtSecret = env.JWT_SECRET || null;
  if (jwtSecret !== null && jwtSecret.length < 32) throw new ConfigError('JWT_SECRET must be at least 32 characters (or unset it to have one generated in DATA_DIR)');
  const adminEmail = str(env, 'ADMIN_EMAIL', 'admin@example.com').trim().toLowerCase();
  if (!/^[^@\s]+@[^@\s]+$/.test(adminEmail)) throw new ConfigError('ADMIN_EMAIL must be an email address');
  const adminPassword = str(env, 'ADMIN_PASSWORD', DEFAULT_ADMIN_PASSWORD);
  if (adminPassword.length < 8 || adminPassword.length > 256) throw new ConfigError('ADMIN_PASSWORD must be 8 to 256 characters');
  const logLevel = str(env, 'LOG_LEVEL', 'info');
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError('LOG_LEVEL must be one of debug, info, warn, error');
  const spawner = str(env, 'SPAWNER', 'auto');
  if (!['auto', 'native', 'node'].includes(spawner)) throw new ConfigError('SPAWNER must be one of auto, native, node');
  const roots = str(env, 'JOBS_ALLOWED_ROOTS', join(dataDir, 'workspace')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const r of roots) {
    if (!isAbsolute(r)) throw new ConfigError(`JOBS_ALLOWED_ROOTS must be a comma-separated list of absolute paths (got ${JSON.stringify(r)})`);
  }
  if (roots.length === 0) throw new ConfigError('JOBS_ALLOWED_ROOTS must name at least one absolute path');
  return Object.freeze({
    port: int(env, 'PORT', 8000, 0, 65535),
    host: str(env, 'HOST', '127.0.0.1'),
    apiPrefix: prefix,
    dataDir,
    database: database(env, dataDir),
    redisUrl,
    jwtSecret,
    jwtTtlSeconds: int(env, 'JWT_TTL_SECONDS', 3600, 60, 30 * 86400),
    adminEmail,
    adminPassword,
    defaultMaxConcurrentJobs: int(env, 'DEFAULT_MAX_CONCURRENT_JOBS', 4, 1, 10000),
    workerConcurrency: int(env, 'WORKER_CONCURRENCY', Math.max(4, 2 * cpus().length), 1, 1024),
    jobsAllowedRoots: Object.freeze(roots.map((r) => resolve(r))),
    maxLogBytes: int(env, 'MAX_LOG_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxBodyBytes: int(env, 'MAX_BODY_BYTES', 1024 * 1024, 1024, 256 * 1024 * 1024),
    logLevel: logLevel as LogLevel,
    killGraceMs: int(env, 'KILL_GRACE_SECONDS', 5, 0, 3600) * 1000,
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_SECONDS', 30, 0, 86400) * 1000,
    heartbeatMs: int(env, 'HEARTBEAT_SECONDS', 10, 1, 3600) * 1000,
    spawner: spawner as Config['spawner'],
  });
}
