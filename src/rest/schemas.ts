// REST request and response shapes (snake_case). Request schemas validate
// bodies before any GraphQL runs; all of them feed the OpenAPI document.
// Bodies are the services' own input schemas under snake_case names
// (restBody), so a rule is written once and both transports enforce it.
import { z } from 'zod';
import { jobLimit, role } from '../services/validation.js';
import * as J from '../services/jobSpec.js';
import { tokenFields } from '../services/apiTokens.js';
import { batchJobs, createBatchInput, forceCompleteBatchInput, MAX_BATCH_JOBS } from '../services/batches.js';
import { forceCompleteInput } from '../services/jobs.js';
import { listFields, MAX_PAGE, pageSizeRule } from '../services/paging.js';
import { SCOPES } from '../services/policy.js';
import { DEFAULT_STORAGE_USERS, MAX_STORAGE_USERS } from '../services/retention.js';
import { createUserInput, updateMeInput, updateUserInput } from '../services/users.js';

type Snake<S extends string> = S extends `${infer H}${infer T}` ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${Snake<T>}` : S;
type SnakeShape<T> = { [K in keyof T & string as Snake<K>]: T[K] };
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * A service's input as a REST body: the same field rules under snake_case
 * names. `fields` replaces some: a nested REST shape, or a rule with its
 * documentation attached (`.meta` keeps the rule).
 */
function restBody<T extends z.ZodRawShape, R extends { [K in keyof SnakeShape<T>]?: z.ZodType } = {}>(input: z.ZodObject<T>, fields?: R) {
  const shape = Object.fromEntries(Object.entries(input.shape).map(([name, rule]) => [snake(name), rule]));
  return z.strictObject({ ...shape, ...fields } as Omit<SnakeShape<T>, keyof R> & R);
}

const timestamp = z.string().meta({ format: 'date-time', example: '2026-11-25T10:00:00.000Z' });

export const TokenForm = z.strictObject({
  username: z.string().min(1).meta({ description: 'The email address' }),
  password: z.string().min(1),
  grant_type: z.literal('password').optional(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
});

export const TokenRead = z.object({
  access_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.number().int(),
});

export const UserCreate = restBody(createUserInput);

export const UserUpdate = restBody(updateUserInput, {
  max_concurrent_jobs: updateUserInput.shape.maxConcurrentJobs.meta({ description: 'null clears the override' }),
});

export const UserRead = z.object({
  id: z.string(),
  email: z.string(),
  role,
  is_active: z.boolean(),
  max_concurrent_jobs: z.number().int().nullable(),
  created_at: timestamp,
});

export const MeRead = UserRead.extend({
  effective_max_concurrent_jobs: z.number().int().meta({ description: 'The limit in force: your override, else the default' }),
  running_jobs: z.number().int(),
  pending_jobs: z.number().int(),
});

export const MeUpdate = restBody(updateMeInput);

export const ApiTokenCreate = z.strictObject({
  name: tokenFields.name,
  scopes: tokenFields.scopes.meta({ description: `Any of ${SCOPES.join(', ')}; at most what the owner's role allows` }),
  expires_in_days: tokenFields.expiresInDays.meta({ description: '1 to 365; default 30' }),
  user_id: tokenFields.userId.meta({ description: 'Admins: make the token for this user' }),
});

export const ApiTokenRead = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  created_at: timestamp,
  expires_at: timestamp,
  last_used_at: timestamp.nullable(),
});

export const ApiTokenCreated = ApiTokenRead.omit({ last_used_at: true }).extend({
  token: z.string().meta({ description: 'The secret, shown this once: send it as Authorization: Bearer <token>' }),
});

export const ApiTokenListQuery = z.strictObject({
  user_id: listFields.id.optional().meta({ description: 'Admins: another user\'s tokens' }),
});

const cursor = listFields.cursor.meta({ description: 'The X-Next-Cursor header of the previous page' });
const pageLimit = (description: string) => pageSizeRule(z.coerce.number()).meta({ description: `${description}; X-Next-Cursor names the next page` });

export const AuditListQuery = z.strictObject({
  actor_id: listFields.id.optional(),
  action: z.string().max(100).optional(),
  target_id: listFields.id.optional(),
  limit: pageLimit(`Page size (default 100, at most ${MAX_PAGE})`).optional(),
  after: cursor.optional(),
});

export const AuditEntryRead = z.object({
  id: z.string(),
  at: timestamp,
  actor_id: z.string().nullable(),
  action: z.string(),
  target_type: z.string().nullable(),
  target_id: z.string().nullable(),
  outcome: z.enum(['success', 'failure', 'denied']),
  client_address: z.string().nullable(),
});

export const LimitSet = z.strictObject({ max_concurrent_jobs: jobLimit });
export const UserLimitSet = z.strictObject({ max_concurrent_jobs: jobLimit.nullable() });

export const LimitsRead = z.object({
  default_max_concurrent_jobs: z.number().int(),
  overrides: z.array(z.object({ user_id: z.string(), email: z.string(), max_concurrent_jobs: z.number().int() })),
});

const isolationLevel = z
  .enum(['full', 'reduced', 'off', 'none'])
  .meta({ description: 'full: own uid per user, namespaces and cgroup; reduced: unprivileged user namespace; off: JOB_ISOLATION=off; none: impossible on this host, jobs are refused' });

export const HealthRead = z.object({
  status: z.enum(['ok', 'unavailable']),
  database: z.boolean(),
  redis: z.boolean().nullable(),
  version: z.string(),
  isolation: isolationLevel.nullable().meta({ description: 'How isolated jobs run by this process are; null when it runs no jobs (serve --no-worker). Details: GET /admin/isolation' }),
});

export const IsolationRead = z
  .object({
    level: isolationLevel,
    identity: z.string().meta({ description: 'As whom jobs run' }),
    features: z.array(z.string()).meta({ description: 'Kernel features in use' }),
    missing: z.array(z.string()).meta({ description: 'What this host lacks and what is done instead; empty when nothing is' }),
    network: z.string().meta({ description: 'How jobs reach the network' }),
  })
  .nullable()
  .meta({ description: 'null when this process runs no jobs (serve --no-worker)' });

export const ErrorRead = z.object({ detail: z.union([z.string(), z.array(z.object({ type: z.string(), loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), input: z.unknown().optional() }))]) });

const status = z.enum(J.JOB_STATUSES);

export const JobCreate = restBody(J.submitJobInput, {
  command: J.command.meta({ description: 'argv: the program, then its arguments; never run through a shell', example: ['make', 'test'] }),
  working_dir: J.submitJobInput.shape.workingDir.meta({ description: 'Existing directory inside JOBS_ALLOWED_ROOTS; omitted, a fresh one under DATA_DIR/runs' }),
  limits: J.resourceLimitsBody.nullish().meta({ description: 'Resource limits to ask for, each optional; omitted ones get the configured defaults. One above its configured ceiling (JOB_*_MAX) is a 422.' }),
});

const limitInForce = (description: string) => z.number().int().nullable().meta({ description: `${description}; null: unlimited` });

export const ResourceLimitsRead = z.object({
  memory_mb: limitInForce('Memory, in MiB'),
  pids: limitInForce('Processes and threads'),
  cpu_seconds: limitInForce('CPU time, in seconds'),
  open_files: limitInForce('Open file descriptors per process'),
  file_size_mb: limitInForce('Largest file a job may write, in MiB'),
} satisfies Record<J.LimitField, z.ZodType>).meta({ description: 'The resource limits in force' });

export const JobRead = z.object({
  id: z.string(),
  name: z.string(),
  command: z.array(z.string()),
  working_dir: z.string(),
  env: z.record(z.string(), z.string()),
  payload: z.record(z.string(), z.unknown()).nullable(),
  status,
  exit_code: z.number().int().nullable(),
  error: z.string().nullable(),
  owner_id: z.string(),
  batch_id: z.string().nullable(),
  timeout_seconds: z.number().int().nullable(),
  created_at: timestamp,
  started_at: timestamp.nullable(),
  finished_at: timestamp.nullable(),
  attempt: z.number().int().meta({
    description:
      'How many times the job was started: 0 until a worker first claims it, then one more at each claim. A job requeued because its worker died before starting it is claimed again with the next number; each attempt starts the command at most once.',
  }),
  worker_id: z.string().nullable().meta({ description: 'The worker that claimed the latest attempt, `<host>:<pid>:<random>`; null while no worker has claimed the job' }),
  worker_host: z.string().nullable().meta({ description: "That worker's host: worker_id up to its first ':'; null when worker_id is" }),
  cancel_requested: z.boolean().meta({
    description: 'true when a cancel or force-complete was asked for while the job runs and is not yet carried out (the job is still running; its processes are not confirmed dead)',
  }),
  logs_removed_at: timestamp.nullable().meta({ description: 'When retention or the log quota removed the stored output (GET /jobs/{id}/logs then answers 410); null while it is kept' }),
  limits: ResourceLimitsRead,
});

/** `a,b` or a repeated parameter (the router hands repeats over as an array). */
const statuses = z
  .union([z.string(), z.array(z.string())])
  .transform((v, ctx) => {
    const list = [v].flat().flatMap((s) => s.split(',')).map((s) => s.trim());
    const bad = list.filter((s) => !(J.JOB_STATUSES as readonly string[]).includes(s));
    if (list.length && !bad.length) return list as J.JobStatus[];
    ctx.addIssue({ code: 'custom', input: v, message: `Input should be one or more of ${J.JOB_STATUSES.map((s) => `'${s}'`).join(', ')}, comma-separated or repeated${bad.length ? `; not ${bad.map((s) => `'${s}'`).join(', ')}` : ''}` });
    return z.NEVER;
  })
  .meta({ description: 'One or more statuses: `status=success,failed` or `status=success&status=failed`' });
const sortOrder = listFields.order.optional().meta({ description: '`asc` (default): oldest first; `desc`: newest first. X-Next-Cursor pages on in the same order' });
const instant = (description: string) => z.iso.datetime({ offset: true }).meta({ description: `${description} (ISO 8601, e.g. 2026-01-31T12:00:00Z)` });

export const JobListQuery = z.strictObject({
  status: statuses.optional(),
  batch_id: listFields.id.optional(),
  name: listFields.name.optional().meta({ description: 'Only jobs whose name contains this (ignoring ASCII case)' }),
  owner_id: listFields.id.optional().meta({ description: "Only this user's jobs (admins and viewers; operators only ever see their own)" }),
  created_after: instant('Only jobs created strictly after this instant').optional(),
  created_before: instant('Only jobs created strictly before this instant').optional(),
  order: sortOrder,
  limit: pageLimit(`Page size (default and maximum ${MAX_PAGE})`).optional(),
  after: cursor.optional(),
});

export const JobStatsRead = z.object({
  pending: z.number().int(), running: z.number().int(), success: z.number().int(),
  failed: z.number().int(), canceled: z.number().int(), total: z.number().int(),
});

export const JobLogsRead = z.object({
  job_id: z.string(),
  status,
  exit_code: z.number().int().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
});

export const ForceComplete = restBody(forceCompleteInput);

export const BatchCreate = restBody(createBatchInput, {
  jobs: batchJobs(JobCreate).meta({ description: `1 to ${MAX_BATCH_JOBS} jobs; if any is invalid, nothing is created` }),
});

export const BatchRead = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  owner_id: z.string(),
  created_at: timestamp,
  status,
  job_counts: JobStatsRead,
});

export const BatchWithJobsRead = BatchRead.extend({ jobs: z.array(JobRead) });

export const BatchListQuery = z.strictObject({
  name: listFields.name.optional().meta({ description: 'Only batches whose name contains this (ignoring ASCII case)' }),
  owner_id: listFields.id.optional().meta({ description: "Only this user's batches (admins and viewers; operators only ever see their own)" }),
  created_after: instant('Only batches created strictly after this instant').optional(),
  created_before: instant('Only batches created strictly before this instant').optional(),
  order: sortOrder,
  limit: pageLimit(`Page size (default and maximum ${MAX_PAGE})`).optional(),
  after: cursor.optional(),
});

export const BatchForceComplete = restBody(forceCompleteBatchInput);

// ---- Storage and retention (services/retention.ts) ----

export const StorageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_STORAGE_USERS).optional().meta({ description: `Users listed, most stored output first (default ${DEFAULT_STORAGE_USERS}, at most ${MAX_STORAGE_USERS})` }),
});

const bytes = (description: string) => z.number().int().meta({ description });

export const StorageRead = z.object({
  database: z.object({
    provider: z.enum(['sqlite', 'postgresql']),
    bytes: bytes('SQLite: the file plus its -wal; PostgreSQL: pg_database_size'),
    wal_bytes: bytes('SQLite: the -wal file alone').nullable(),
    free_bytes: bytes('SQLite: free pages inside the file (reused, or returned by incremental vacuum)').nullable(),
    auto_vacuum: z.string().nullable().meta({ description: 'SQLite: none, full or incremental; null on PostgreSQL (left to autovacuum)' }),
  }),
  totals: z.object({ jobs: z.number().int(), stored_log_bytes: bytes('Output all jobs keep stored'), jobs_with_logs_removed: z.number().int() }),
  users: z.array(z.object({
    user_id: z.string(),
    email: z.string().nullable(),
    jobs: z.number().int(),
    stored_log_bytes: bytes('Output their jobs keep stored: what LOG_QUOTA_BYTES is held against'),
    jobs_with_logs_removed: z.number().int(),
  })),
  policy: z.object({
    job_days: z.number().int().nullable().meta({ description: 'RETENTION_JOBS_DAYS; null: jobs are kept' }),
    log_days: z.number().int().nullable().meta({ description: 'RETENTION_LOGS_DAYS; null: output is kept' }),
    interval_minutes: z.number().int(),
    batch_rows: z.number().int(),
    log_quota_bytes: z.number().int().nullable().meta({ description: 'LOG_QUOTA_BYTES; null: no quota' }),
    log_quota_mode: z.enum(['reject', 'evict']),
  }),
});

export const AdminStatusRead = z.object({
  version: z.string(),
  database: z.enum(['sqlite', 'postgresql']),
  queue: z.object({
    pending: z.number().int(),
    running: z.number().int(),
    oldest_pending_at: timestamp.nullable().meta({ description: 'When the longest-waiting pending job was submitted; null when none waits' }),
  }),
  workers: z.array(z.object({
    id: z.string(),
    hostname: z.string(),
    pid: z.number().int(),
    started_at: timestamp,
    heartbeat_at: timestamp.meta({ description: 'Its last lease renewal' }),
    lease_expires_at: timestamp,
    expired: z.boolean().meta({ description: 'Past its lease and not reaped yet: another worker settles its jobs soon' }),
    running: z.number().int().meta({ description: 'Jobs the database has running on it' }),
  })).meta({ description: 'Registered workers, oldest first' }),
  isolation: IsolationRead.meta({ description: 'This process\'s isolation (as GET /admin/isolation); null when it runs no jobs' }),
});

export const RetentionRunRead = z.object({
  started_at: timestamp,
  finished_at: timestamp,
  jobs_deleted: z.number().int(),
  batches_deleted: z.number().int(),
  logs_removed: z.number().int().meta({ description: 'Jobs whose output was removed, deleted ones included' }),
  chunks_deleted: z.number().int(),
  run_dirs_removed: z.number().int(),
  database_bytes_before: bytes('SQLite: file plus -wal; PostgreSQL: pg_database_size (space is left to autovacuum)'),
  database_bytes_after: bytes('The same after the run (SQLite: after incremental vacuum and a truncating WAL checkpoint)'),
});
