// The only reader of process.env. Every variable is validated once at
// start-up; a wrong value stops the process with one line naming it.
import { cpus } from 'node:os';
import { isAbsolute, resolve, join } from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'auto' | 'json' | 'text';

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly apiPrefix: string;
  readonly dataDir: string;
  readonly database: { readonly provider: 'sqlite'; readonly file: string } | { readonly provider: 'postgresql'; readonly url: string };
  readonly redisUrl: string | null;
  /**
   * Start of every Redis channel name (`<prefix>:<topic>`). Pub/sub ignores
   * the database index, so the default names it when it is not 0
   * (`jobrunner:3` for redis://…/3): deployments that differ only by index stay apart.
   */
  readonly redisPrefix: string;
  readonly jwtSecret: string | null;
  readonly jwtTtlSeconds: number;
  /** Audit entries older than this many days are deleted. */
  readonly auditRetentionDays: number;
  readonly adminEmail: string;
  readonly adminPassword: string;
  readonly defaultMaxConcurrentJobs: number;
  readonly workerConcurrency: number;
  readonly jobsAllowedRoots: readonly string[];
  readonly maxLogBytes: number;
  readonly maxBodyBytes: number;
  readonly logLevel: LogLevel;
  /** Console lines: `auto` is readable text on a terminal, JSON lines otherwise; colour unless NO_COLOR is set. */
  readonly log: { readonly format: LogFormat; readonly colour: boolean };
  readonly killGraceMs: number;
  readonly shutdownGraceMs: number;
  readonly heartbeatMs: number;
  /** Which helper starts jobs: the native one when built (auto), or the one named. */
  readonly spawner: 'auto' | 'native' | 'node';
  /** Behind a reverse proxy: take the client's address from X-Forwarded-For (login throttling, logs). */
  readonly trustProxy: boolean;
  /** Origins whose browser requests to /graphql may carry credentials (reflected with Allow-Credentials); any other origin gets `*` without. */
  readonly corsOrigins: readonly string[];
  /** 'on' unless an administrator turned it off explicitly (JOB_ISOLATION=off). */
  readonly jobIsolation: 'on' | 'off';
  /** 'host': the host's network (backing services refused); 'none': loopback only. */
  readonly jobNetwork: 'host' | 'none';
  /** Uids (and gids) jobs run as when the server may switch identity: one per user, from this range. */
  readonly jobUids: { readonly first: number; readonly last: number };
  /** A supplementary group every job gets (shared workspaces), or null. */
  readonly jobGroup: number | null;
  /** Per-job resource limits: what a job gets when it asks for nothing, and the most it may ask for (null: unlimited). */
  readonly jobLimits: { readonly defaults: ResourceLimits; readonly ceilings: ResourceLimits };
  /** Prometheus metrics (src/metrics): where they are served and who may read them. */
  readonly metrics: MetricsConfig;
  /** What is kept and for how long, and the per-user stored-log quota. */
  readonly retention: RetentionConfig;
}

export interface MetricsConfig {
  /** METRICS=off collects nothing and serves no /metrics (for measuring their cost). */
  readonly enabled: boolean;
  /** A separate listener for /metrics, /health and /livez (worker processes have no other); null: none. */
  readonly port: number | null;
  readonly host: string;
  /** Bearer token a scraper must send, on every port; null: none asked. */
  readonly token: string | null;
  /** Serve /metrics on the API port without a token (opt-in: that port faces users). */
  readonly public: boolean;
}

/** Per-job resource limits; null is unlimited. */
export interface ResourceLimits {
  readonly memoryMb: number | null;
  readonly pids: number | null;
  readonly cpuSeconds: number | null;
  readonly openFiles: number | null;
  readonly fileSizeMb: number | null;
}

/** Each limit: its environment variable stem, REST field, default and the widest range any value may take. */
export const RESOURCE_LIMITS = {
  memoryMb: { env: 'JOB_MEMORY_MB', field: 'memory_mb', def: 4096, min: 16, max: 1024 * 1024 },
  pids: { env: 'JOB_PIDS', field: 'pids', def: 1024, min: 8, max: 4_194_304 },
  cpuSeconds: { env: 'JOB_CPU_SECONDS', field: 'cpu_seconds', def: null, min: 1, max: 365 * 86400 },
  openFiles: { env: 'JOB_OPEN_FILES', field: 'open_files', def: 4096, min: 16, max: 1024 * 1024 },
  fileSizeMb: { env: 'JOB_FILE_SIZE_MB', field: 'file_size_mb', def: null, min: 1, max: 16 * 1024 * 1024 },
} as const satisfies Record<keyof ResourceLimits, { env: string; field: string; def: number | null; min: number; max: number }>;

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

/** REDIS_PREFIX, or `jobrunner` plus the database index of REDIS_URL when it is not 0. */
function redisPrefix(env: Env, redisUrl: string | null): string {
  const raw = env.REDIS_PREFIX;
  if (raw !== undefined && raw !== '') {
    // Printable ASCII without spaces or glob characters, so `PSUBSCRIBE <prefix>:*` matches exactly this deployment's channels.
    if (!/^[!-~]{1,64}$/.test(raw) || /[*?[\]\\]/.test(raw) || raw === ':') {
      throw new ConfigError(`REDIS_PREFIX must be 1 to 64 printable characters without spaces or * ? [ ] \\ (got ${JSON.stringify(raw)})`);
    }
    return raw.replace(/:$/, '');
  }
  if (!redisUrl) return 'jobrunner';
  const url = new URL(redisUrl);
  const index = url.searchParams.get('db') ?? (url.pathname.replace(/^\//, '') || '0');
  if (!/^\d{1,5}$/.test(index)) throw new ConfigError(`REDIS_URL must name the database as a number (redis://host:port/3), got ${JSON.stringify(index)}`);
  return Number(index) === 0 ? 'jobrunner' : `jobrunner:${Number(index)}`;
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

/** An optional limit: unset keeps `def`, "unlimited" (or 0) is null. */
function limit(env: Env, name: string, def: number | null, min: number, max: number): number | null {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return def;
  if (raw === 'unlimited' || raw === '0') return null;
  return int(env, name, 0, min, max);
}

function jobLimits(env: Env): Config['jobLimits'] {
  const defaults: Record<string, number | null> = {};
  const ceilings: Record<string, number | null> = {};
  for (const [key, spec] of Object.entries(RESOURCE_LIMITS)) {
    const ceiling = limit(env, `${spec.env}_MAX`, null, spec.min, spec.max);
    // Unset, the default is the built-in one held to the ceiling (an unlimited one becomes the ceiling).
    const def = limit(env, spec.env, spec.def === null ? ceiling : Math.min(spec.def, ceiling ?? spec.def), spec.min, spec.max);
    if (ceiling !== null && (def === null || def > ceiling)) {
      throw new ConfigError(`${spec.env} (${def ?? 'unlimited'}) must not exceed ${spec.env}_MAX (${ceiling})`);
    }
    defaults[key] = def;
    ceilings[key] = ceiling;
  }
  return Object.freeze({ defaults: Object.freeze(defaults) as unknown as ResourceLimits, ceilings: Object.freeze(ceilings) as unknown as ResourceLimits });
}

function uidRange(env: Env): Config['jobUids'] {
  const raw = str(env, 'JOB_UID_RANGE', '1000000000-1999999999').trim();
  const m = /^(\d+)-(\d+)$/.exec(raw);
  const first = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2]) : NaN;
  // Below 1000 are system accounts; at 2^31 some tools read uids as signed.
  if (!m || first < 1000 || last >= 2 ** 31 - 1 || last - first < 65535) {
    throw new ConfigError(`JOB_UID_RANGE must be FIRST-LAST with 1000 <= FIRST, LAST < 2147483647 and at least 65536 ids (got ${JSON.stringify(raw)})`);
  }
  return Object.freeze({ first, last });
}

// ---- Retention and stored-log quotas (services/retention.ts, services/logQuota.ts) ----

export interface RetentionConfig {
  /** Terminal jobs finished more than this many days ago are deleted (rows, output, run directories); null: kept. */
  readonly jobDays: number | null;
  /** Output of terminal jobs finished more than this many days ago is removed, the row kept (its logs answer 410); null: kept. */
  readonly logDays: number | null;
  /** How often one process runs retention. */
  readonly intervalMs: number;
  /** Rows one statement (one transaction) deletes or changes: the bound that keeps submissions flowing. */
  readonly batchRows: number;
  /** Output a user's jobs may keep stored, in bytes; null: no quota. */
  readonly logQuotaBytes: number | null;
  /** At the quota a submission is refused (reject), or the user's oldest finished jobs' output is removed to make room (evict). */
  readonly logQuotaMode: 'reject' | 'evict';
}

/** Unset, empty, 0 and off mean "none" (null). */
const none = (raw: string | undefined) => raw === undefined || ['', '0', 'off'].includes(raw.trim());

function retention(env: Env): RetentionConfig {
  const jobDays = none(env.RETENTION_JOBS_DAYS) ? null : int(env, 'RETENTION_JOBS_DAYS', 0, 1, 36500);
  const logDays = none(env.RETENTION_LOGS_DAYS) ? null : int(env, 'RETENTION_LOGS_DAYS', 0, 1, 36500);
  if (jobDays !== null && logDays !== null && logDays >= jobDays) {
    throw new ConfigError(`RETENTION_LOGS_DAYS (${logDays}) must be less than RETENTION_JOBS_DAYS (${jobDays}): a job's output goes with the job anyway`);
  }
  const mode = str(env, 'LOG_QUOTA_MODE', 'reject');
  if (!['reject', 'evict'].includes(mode)) throw new ConfigError('LOG_QUOTA_MODE must be reject or evict');
  return Object.freeze({
    jobDays,
    logDays,
    intervalMs: int(env, 'RETENTION_INTERVAL_MINUTES', 60, 1, 7 * 24 * 60) * 60_000,
    batchRows: int(env, 'RETENTION_BATCH_ROWS', 500, 10, 10_000),
    logQuotaBytes: none(env.LOG_QUOTA_BYTES) ? null : int(env, 'LOG_QUOTA_BYTES', 0, 1024, 2 ** 50),
    logQuotaMode: mode as RetentionConfig['logQuotaMode'],
  });
}

// ---- end of retention and quotas ----

function metrics(env: Env, apiHost: string): MetricsConfig {
  const enabled = str(env, 'METRICS', 'on');
  if (!['on', 'off'].includes(enabled)) throw new ConfigError('METRICS must be on or off');
  const exposed = str(env, 'METRICS_PUBLIC', 'off');
  if (!['on', 'off'].includes(exposed)) throw new ConfigError('METRICS_PUBLIC must be on or off');
  const token = env.METRICS_TOKEN || null;
  if (token !== null && !/^[!-~]{16,256}$/.test(token)) throw new ConfigError('METRICS_TOKEN must be 16 to 256 printable characters without spaces (e.g. openssl rand -hex 32)');
  const port = env.METRICS_PORT ? int(env, 'METRICS_PORT', 0, 0, 65535) : null;
  return Object.freeze({ enabled: enabled === 'on', port, host: str(env, 'METRICS_HOST', apiHost), token, public: exposed === 'on' });
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(str(env, 'DATA_DIR', './data'));
  const prefix = str(env, 'API_PREFIX', '/api/v1');
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) {
    throw new ConfigError(`API_PREFIX must be a path like /api/v1 without a trailing slash (got ${JSON.stringify(prefix)})`);
  }
  const redisUrl = env.REDIS_URL || null;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) throw new ConfigError('REDIS_URL must start with redis:// or rediss://');
  if (redisUrl) {
    try { new URL(redisUrl); } catch { throw new ConfigError('REDIS_URL must be a valid redis:// or rediss:// URL'); }
  }
  const jwtSecret = env.JWT_SECRET || null;
  if (jwtSecret !== null && jwtSecret.length < 32) throw new ConfigError('JWT_SECRET must be at least 32 characters (or unset it to have one generated in DATA_DIR)');
  const adminEmail = str(env, 'ADMIN_EMAIL', 'admin@example.com').trim().toLowerCase();
  if (!/^[^@\s]+@[^@\s]+$/.test(adminEmail)) throw new ConfigError('ADMIN_EMAIL must be an email address');
  const adminPassword = str(env, 'ADMIN_PASSWORD', DEFAULT_ADMIN_PASSWORD);
  if (adminPassword.length < 8 || adminPassword.length > 256) throw new ConfigError('ADMIN_PASSWORD must be 8 to 256 characters');
  const logLevel = str(env, 'LOG_LEVEL', 'info');
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError('LOG_LEVEL must be one of debug, info, warn, error');
  const logFormat = str(env, 'LOG_FORMAT', 'auto');
  if (!['auto', 'json', 'text'].includes(logFormat)) throw new ConfigError('LOG_FORMAT must be one of auto, json, text');
  const spawner = str(env, 'SPAWNER', 'auto');
  if (!['auto', 'native', 'node'].includes(spawner)) throw new ConfigError('SPAWNER must be one of auto, native, node');
  const isolation = str(env, 'JOB_ISOLATION', 'on');
  if (!['on', 'off'].includes(isolation)) throw new ConfigError('JOB_ISOLATION must be on or off');
  const network = str(env, 'JOB_NETWORK', 'host');
  if (!['host', 'none'].includes(network)) throw new ConfigError('JOB_NETWORK must be host or none');
  const jobGroup = env.JOB_GROUP ? int(env, 'JOB_GROUP', 0, 1, 2 ** 31 - 2) : null;
  const trustProxy = str(env, 'TRUST_PROXY', 'off');
  if (!['on', 'off'].includes(trustProxy)) throw new ConfigError('TRUST_PROXY must be on or off');
  const corsOrigins = str(env, 'CORS_ORIGINS', '').split(',').map((s) => s.trim().replace(/\/$/, '')).filter(Boolean);
  for (const o of corsOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(o)) throw new ConfigError(`CORS_ORIGINS must be a comma-separated list of origins like https://app.example.com (got ${JSON.stringify(o)})`);
  }
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
    redisPrefix: redisPrefix(env, redisUrl),
    jwtSecret,
    jwtTtlSeconds: int(env, 'JWT_TTL_SECONDS', 3600, 60, 30 * 86400),
    auditRetentionDays: int(env, 'AUDIT_RETENTION_DAYS', 90, 1, 36500),
    adminEmail,
    adminPassword,
    defaultMaxConcurrentJobs: int(env, 'DEFAULT_MAX_CONCURRENT_JOBS', 4, 1, 10000),
    workerConcurrency: int(env, 'WORKER_CONCURRENCY', Math.max(4, 2 * cpus().length), 1, 1024),
    jobsAllowedRoots: Object.freeze(roots.map((r) => resolve(r))),
    maxLogBytes: int(env, 'MAX_LOG_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxBodyBytes: int(env, 'MAX_BODY_BYTES', 1024 * 1024, 1024, 256 * 1024 * 1024),
    logLevel: logLevel as LogLevel,
    log: { format: logFormat as LogFormat, colour: !env.NO_COLOR },
    killGraceMs: int(env, 'KILL_GRACE_SECONDS', 5, 0, 3600) * 1000,
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_SECONDS', 30, 0, 86400) * 1000,
    heartbeatMs: int(env, 'HEARTBEAT_SECONDS', 10, 1, 3600) * 1000,
    spawner: spawner as Config['spawner'],
    trustProxy: trustProxy === 'on',
    corsOrigins: Object.freeze(corsOrigins),
    jobIsolation: isolation as Config['jobIsolation'],
    jobNetwork: network as Config['jobNetwork'],
    jobUids: uidRange(env),
    jobGroup,
    jobLimits: jobLimits(env),
    metrics: metrics(env, str(env, 'HOST', '127.0.0.1')),
    retention: retention(env),
  });
}
