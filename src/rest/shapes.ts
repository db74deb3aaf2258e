// GraphQL results (camelCase) to REST bodies (snake_case), one function per
// type so user data inside env/payload is never renamed.
import type { z } from 'zod';
import type * as Ops from './operations/generated.js';
import type { ApiTokenRead, AuditEntryRead, BatchRead, JobCreate, JobRead, LimitsRead, MeRead, UserRead } from './schemas.js';
import type { Scope } from '../services/policy.js';

export const userRead = (u: Ops.UserFieldsFragment): z.infer<typeof UserRead> => ({
  id: u.id,
  email: u.email,
  role: u.role.toLowerCase() as z.infer<typeof UserRead>['role'],
  is_active: u.isActive,
  max_concurrent_jobs: u.maxConcurrentJobs,
  created_at: u.createdAt,
});

export const meRead = (u: Ops.MeFieldsFragment): z.infer<typeof MeRead> => ({
  ...userRead(u),
  effective_max_concurrent_jobs: u.effectiveMaxConcurrentJobs,
  running_jobs: u.runningJobs,
  pending_jobs: u.pendingJobs,
});

const scopeOf = (s: Ops.ApiScope) => s.toLowerCase().replace('_', ':') as Scope;
export const scopeEnum = (s: Scope) => s.replace(':', '_').toUpperCase() as Ops.ApiScope;

export const apiTokenRead = (t: Ops.ApiTokenFieldsFragment): z.infer<typeof ApiTokenRead> => ({
  id: t.id,
  name: t.name,
  scopes: t.scopes.map(scopeOf),
  created_at: t.createdAt,
  expires_at: t.expiresAt,
  last_used_at: t.lastUsedAt,
});

export const auditEntryRead = (e: Ops.AuditLogQuery['auditLog']['edges'][number]['node']): z.infer<typeof AuditEntryRead> => ({
  id: e.id,
  at: e.at,
  actor_id: e.actorId,
  action: e.action,
  target_type: e.targetType,
  target_id: e.targetId,
  outcome: e.outcome as z.infer<typeof AuditEntryRead>['outcome'],
  client_address: e.clientAddress,
});

export const limitsRead = (l: Ops.LimitsFieldsFragment): z.infer<typeof LimitsRead> => ({
  default_max_concurrent_jobs: l.defaultMaxConcurrentJobs,
  overrides: l.overrides.map((o) => ({ user_id: o.userId, email: o.email, max_concurrent_jobs: o.maxConcurrentJobs })),
});

const ROLE = { admin: 'ADMIN', operator: 'OPERATOR', viewer: 'VIEWER' } as const;
export const roleEnum = (r: keyof typeof ROLE) => ROLE[r];

type Status = z.infer<typeof JobRead>['status'];
const lower = (s: Ops.JobStatus) => s.toLowerCase() as Status;
export const statusEnum = (s: Status) => s.toUpperCase() as Ops.JobStatus;

export const jobRead = (j: Ops.JobFieldsFragment): z.infer<typeof JobRead> => ({
  id: j.id,
  name: j.name,
  command: j.command,
  working_dir: j.workingDir,
  env: j.env as Record<string, string>,
  payload: j.payload,
  status: lower(j.status),
  exit_code: j.exitCode,
  error: j.error,
  owner_id: j.ownerId,
  batch_id: j.batchId,
  timeout_seconds: j.timeoutSeconds,
  created_at: j.createdAt,
  started_at: j.startedAt,
  finished_at: j.finishedAt,
  attempt: j.attempt,
  worker_id: j.workerId,
  worker_host: j.workerHost,
  cancel_requested: j.cancelRequested,
  logs_removed_at: j.logsRemovedAt,
  limits: {
    memory_mb: j.limits.memoryMb,
    pids: j.limits.pids,
    cpu_seconds: j.limits.cpuSeconds,
    open_files: j.limits.openFiles,
    file_size_mb: j.limits.fileSizeMb,
  },
});

/**
 * The status of a cancel or force-complete answer, for both routes: 202 when
 * the job is still running with its stop recorded (cancelRequested) because
 * the service's bounded wait ended before the worker confirmed it; 200
 * otherwise (the job has ended).
 */
export const stopStatus = (j: Ops.JobFieldsFragment): 200 | 202 => (j.status === 'RUNNING' && j.cancelRequested ? 202 : 200);

/** A batch's cancel or force-complete: 202 while any of its jobs is answered still running with its stop recorded, as stopStatus says of one job. */
export const batchStopStatus = (b: { jobs: Ops.JobFieldsFragment[] }): 200 | 202 => (b.jobs.some((j) => stopStatus(j) === 202) ? 202 : 200);

export const jobLogsRead = (l: NonNullable<Ops.JobLogsQuery['job']>['logs']) => ({
  job_id: l.jobId,
  status: lower(l.status),
  exit_code: l.exitCode,
  stdout: l.stdout,
  stderr: l.stderr,
  stdout_truncated: l.stdoutTruncated,
  stderr_truncated: l.stderrTruncated,
});

export const batchRead = (b: Ops.BatchFieldsFragment): z.infer<typeof BatchRead> => ({
  id: b.id,
  name: b.name,
  description: b.description,
  owner_id: b.ownerId,
  created_at: b.createdAt,
  status: lower(b.status),
  job_counts: b.jobCounts,
});

export const batchWithJobsRead = (b: Ops.BatchWithJobsFragment) => ({ ...batchRead(b), jobs: b.jobs.map(jobRead) });

/** REST JobCreate (snake_case) to the GraphQL SubmitJobInput. */
export const submitJobInput = (j: z.infer<typeof JobCreate>): Ops.SubmitJobInput => ({
  name: j.name, command: j.command, workingDir: j.working_dir, env: j.env, payload: j.payload, timeoutSeconds: j.timeout_seconds,
  limits: j.limits && {
    memoryMb: j.limits.memory_mb, pids: j.limits.pids, cpuSeconds: j.limits.cpu_seconds, openFiles: j.limits.open_files, fileSizeMb: j.limits.file_size_mb,
  },
});
