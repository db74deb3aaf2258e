// What a job submission may contain, shared by single jobs and batches, by
// GraphQL (camelCase) and REST (snake_case). Shape rules are zod (422);
// rules about the machine (working directory, loader variables) are domain
// rules (400) checked in prepareJob.
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { z } from 'zod';
import { BadInput } from '../errors.js';
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

/** The GraphQL-side input (camelCase). */
export const submitJobInput = z.strictObject({
  name: jobName,
  command,
  workingDir: workingDir.nullish(),
  env: env.nullish(),
  payload: payload.nullish(),
  timeoutSeconds: timeoutSeconds.nullish(),
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

export interface PreparedJob {
  name: string;
  command: string;
  env: string;
  payload: string | null;
  workingDir: string | null;
  timeoutSeconds: number | null;
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
    exitCode: null, error: null, startedAt: null, finishedAt: null, workerId: null, pid: null,
    stdoutBytes: 0, stderrBytes: 0, stdoutTruncated: false, stderrTruncated: false,
  };
}

/** Domain checks on a shape-valid job; `where` prefixes messages for batch members. */
export function prepareJob(input: SubmitJobInput, allowedRoots: readonly string[], where = ''): PreparedJob {
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
    if (!resolvedRoots(allowedRoots).some((root) => inside(root, real))) {
      throw new BadInput(`${where}working_dir ${input.workingDir} is outside the allowed roots (${allowedRoots.join(', ')}); set JOBS_ALLOWED_ROOTS to allow it`);
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
  };
}

/**
 * PostgreSQL text cannot hold NUL, so output keeps one representation on
 * both providers: NUL is stored as U+FFFD, like bytes that are not UTF-8.
 */
export const storableText = (s: string): string => (s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s);
