// What a job submission may contain, shared by single jobs and batches, by
// GraphQL (camelCase) and REST (snake_case). Shape rules are zod (422), and
// so are resource limits above the configured ceilings (ceilingIssues); rules
// about the machine (working directory, loader variables) are domain rules
// (400) checked in prepareJob.
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { z } from 'zod';
import { RESOURCE_LIMITS, type Config, type ResourceLimits } from '../config.js';
import { BadInput, ValidationFailed, type ValidationIssue } from '../errors.js';
import type { Job } from '../generated/sqlite/client.js';
import { text } from './validation.js';

const noNul = (s: string) => !s.includes('\0');

export const jobName = text().min(1).max(200);
export const command = z
  .array(z.string().max(128 * 1024).refine(noNul, 'must not contain NUL bytes'))
  .min(1)
  .max(256)
  .refine((argv) => argv.length === 0 || argv[0]!.trim() !== '', { message: 'the program (first element) must not be empty', path: [0] });
export const workingDir = z.string().min(1).max(4096).refine(noNul, 'must not contain NUL bytes').refine((p) => isAbsolute(p), 'must be an absolute path');
export const env = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names must match [A-Za-z_][A-Za-z0-9_]*').max(256), z.string().max(32 * 1024).refine(noNul, 'must not contain NUL bytes'))
  .refine((e) => Object.keys(e).length <= 128, 'at most 128 variables');
export const PAYLOAD_MAX_BYTES = 64 * 1024;
export const payload = z
  .record(z.string(), z.unknown())
  .refine((p) => Buffer.byteLength(JSON.stringify(p)) <= PAYLOAD_MAX_BYTES, `payload must be at most ${PAYLOAD_MAX_BYTES} bytes as JSON`);
export const timeoutSeconds = z.number().int().min(1).max(604800);
export const JOB_STATUSES = ['pending', 'running', 'success', 'failed', 'canceled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL: readonly JobStatus[] = ['success', 'failed', 'canceled'];
export const isTerminal = (s: string) => (TERMINAL as readonly string[]).includes(s);

// ---- per-job resource limits ----------------------------------------------
// A job may ask for any limit within RESOURCE_LIMITS' absolute range (zod,
// 422); what it may have on this server is bounded by the configured
// ceilings (JOB_*_MAX), checked by ceilingIssues (also a 422). What it asks
// for, or else the default, is stored with the job as the limits in force.

type LimitKey = keyof ResourceLimits;
const LIMIT_KEYS = Object.keys(RESOURCE_LIMITS) as LimitKey[];
/** A limit's REST (snake_case) name. */
export type LimitField = (typeof RESOURCE_LIMITS)[LimitKey]['field'];

const limitValue = (key: LimitKey) => {
  const spec = RESOURCE_LIMITS[key];
  return z
    .number()
    .int()
    .min(spec.min)
    .max(spec.max)
    .nullish()
    .meta({ description: `${spec.min} to ${spec.max}, at most ${spec.env}_MAX when that is set; omitted or null: ${spec.env} (default ${spec.def ?? 'unlimited'})` });
};
type LimitValue = ReturnType<typeof limitValue>;

/** The GraphQL-side limits a job asks for (camelCase); each optional, null = not asked for. */
const resourceLimitsInput = z.strictObject(
  Object.fromEntries(LIMIT_KEYS.map((k) => [k, limitValue(k)])) as { [K in LimitKey]: LimitValue },
);
/** The REST-side limits a job asks for (snake_case), same rules. */
export const resourceLimitsBody = z.strictObject(
  Object.fromEntries(LIMIT_KEYS.map((k) => [RESOURCE_LIMITS[k].field, limitValue(k)])) as { [K in LimitKey as (typeof RESOURCE_LIMITS)[K]['field']]: LimitValue },
);
type RequestedLimits = z.output<typeof resourceLimitsInput>;

/**
 * The requested limits above the configured ceilings, as Pydantic-shaped
 * issues: `naming` 'key' spells them as GraphQL does (memoryMb), 'field' as
 * REST does (memory_mb); `at` is where the job sits in the input (a batch's
 * ['jobs', 3]). The same rules whichever transport asks.
 */
export function ceilingIssues(
  requested: Readonly<Record<string, number | null | undefined>> | null | undefined,
  ceilings: ResourceLimits,
  naming: 'key' | 'field' = 'key',
  at: (string | number)[] = [],
): ValidationIssue[] {
  if (!requested) return [];
  const issues: ValidationIssue[] = [];
  for (const key of LIMIT_KEYS) {
    const spec = RESOURCE_LIMITS[key];
    const name = naming === 'key' ? key : spec.field;
    const value = requested[name];
    const ceiling = ceilings[key];
    if (value == null || ceiling === null || value <= ceiling) continue;
    issues.push({ type: 'less_than_equal', loc: [...at, 'limits', name], msg: `${name} must be at most ${ceiling} (${spec.env}_MAX)`, input: value });
  }
  return issues;
}

/** Throws the 422 (BAD_USER_INPUT over GraphQL) for every requested limit above its ceiling. */
export function checkCeilings(issues: ValidationIssue[]): void {
  if (issues.length) throw new ValidationFailed(issues);
}

/** The limits in force for a job asking for `requested`: each one asked for, else the default. */
function resolveLimits(requested: RequestedLimits | null | undefined, defaults: ResourceLimits): ResourceLimits {
  return Object.fromEntries(LIMIT_KEYS.map((k) => [k, requested?.[k] ?? defaults[k]])) as unknown as ResourceLimits;
}

/**
 * A job's limits in force, from its stored `limits` column: the stored values
 * over the configured defaults (rows from before the column hold '{}'), none
 * above the ceilings configured now (a ceiling lowered since the job was
 * submitted applies to it too). What the worker enforces and the API reports.
 */
export function limitsInForce(stored: string, jobLimits: Config['jobLimits']): ResourceLimits {
  let saved: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(stored);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) saved = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (never written by this service): the defaults apply.
  }
  const out: Record<string, number | null> = {};
  for (const key of LIMIT_KEYS) {
    const v = saved[key];
    const value = v === null || (typeof v === 'number' && Number.isInteger(v) && v > 0) ? v : jobLimits.defaults[key];
    const ceiling = jobLimits.ceilings[key];
    out[key] = ceiling === null ? value : value === null ? ceiling : Math.min(value, ceiling);
  }
  return out as unknown as ResourceLimits;
}

/** The GraphQL-side input (camelCase). */
export const submitJobInput = z.strictObject({
  name: jobName,
  command,
  workingDir: workingDir.nullish(),
  env: env.nullish(),
  payload: payload.nullish(),
  timeoutSeconds: timeoutSeconds.nullish(),
  limits: resourceLimitsInput.nullish(),
});
export type SubmitJobInput = z.output<typeof submitJobInput>;

// Variables that change how programs are loaded or started: a job could use
// them to run code inside tools it did not name.
const LOADER_VARS = /^(LD_.*|DYLD_.*|NODE_OPTIONS|BASH_ENV|ENV|PERL5OPT|RUBYOPT|GCONV_PATH|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|PYTHONSTARTUP)$/;

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel));
}

/** Resolves the allowed roots once they exist (they may be symlinks themselves). */
function resolvedRoots(roots: readonly string[]): string[] {
  return roots.map((r) => {
    try {
      return realpathSync(r);
    } catch {
      return r;
    }
  });
}

/** The allowed root (resolved) that holds a resolved directory, or null. */
export function allowedRootOf(dir: string, allowedRoots: readonly string[]): string | null {
  return resolvedRoots(allowedRoots).find((root) => inside(root, dir)) ?? null;
}

export interface PreparedJob {
  name: string;
  command: string;
  env: string;
  payload: string | null;
  workingDir: string | null;
  timeoutSeconds: number | null;
  /** JSON of the limits in force (ResourceLimits). */
  limits: string;
}

/** A new pending job exactly as the database will hold it (defaults spelled out), so no read-back is needed. */
export function pendingJob(prepared: PreparedJob, row: { id: string; ownerId: string; batchId: string | null; createdAt: Date }, dataDir: string): Job {
  return {
    ...prepared,
    ...row,
    // A job that names no directory gets a fresh one, removed when it is purged.
    workingDir: prepared.workingDir ?? join(dataDir, 'runs', row.id),
    ownsWorkingDir: prepared.workingDir === null,
    status: 'pending',
    exitCode: null, error: null, startedAt: null, finishedAt: null, workerId: null, pid: null, attempt: 0, stopRequest: null,
    stdoutBytes: 0, stderrBytes: 0, stdoutTruncated: false, stderrTruncated: false, logsRemovedAt: null,
  };
}

/**
 * Domain checks on a shape-valid job whose limits are within the ceilings
 * (ceilingIssues); `where` prefixes messages for batch members.
 */
export function prepareJob(input: SubmitJobInput, config: Pick<Config, 'jobsAllowedRoots' | 'jobLimits' | 'dataDir'>, where = ''): PreparedJob {
  const allowedRoots = config.jobsAllowedRoots;
  const envVars = input.env ?? {};
  const denied = Object.keys(envVars).filter((k) => LOADER_VARS.test(k));
  if (denied.length) {
    throw new BadInput(`${where}env variable ${denied.join(', ')} is not allowed: variables that change how programs load (LD_*, DYLD_*, NODE_OPTIONS, ...) are refused`);
  }
  let dir: string | null = null;
  if (input.workingDir) {
    let real: string;
    try {
      real = realpathSync(input.workingDir);
    } catch {
      throw new BadInput(`${where}working_dir ${input.workingDir} does not exist`);
    }
    if (!statSync(real).isDirectory()) throw new BadInput(`${where}working_dir ${input.workingDir} is not a directory`);
    if (!allowedRootOf(real, allowedRoots)) {
      throw new BadInput(`${where}working_dir ${input.workingDir} is outside the allowed roots (${allowedRoots.join(', ')}); set JOBS_ALLOWED_ROOTS to allow it`);
    }
    // A job sees its working_dir whole: one holding the data directory would show it the database and the secret.
    const [dataDir] = resolvedRoots([config.dataDir]);
    if (inside(real, dataDir!)) {
      throw new BadInput(`${where}working_dir ${input.workingDir} holds the service's data directory (${config.dataDir}); name a directory beside it`);
    }
    dir = real;
  }
  return {
    name: input.name,
    command: JSON.stringify(input.command),
    env: JSON.stringify(envVars),
    payload: input.payload ? JSON.stringify(input.payload) : null,
    workingDir: dir,
    timeoutSeconds: input.timeoutSeconds ?? null,
    limits: JSON.stringify(resolveLimits(input.limits, config.jobLimits.defaults)),
  };
}

/**
 * PostgreSQL text cannot hold NUL, so output keeps one representation on
 * both providers: NUL is stored as U+FFFD, like bytes that are not UTF-8.
 */
export const storableText = (s: string): string => (s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s);
