// The exit status of a command that relays a job's outcome, in the shell's
// conventions: the job's own exit code; 128 + N when a signal N killed it;
// 124 when it timed out (as `timeout` does); 126/127 when its program could
// not be run / was not found; 130 when it was canceled; 125 when it failed
// for another reason without an exit code (a limit, a lost worker).
import { constants } from 'node:os';

export interface JobOutcome {
  status: string;
  exit_code: number | null;
  error: string | null;
}

const JOB_EXIT = { timedOut: 124, failedOtherwise: 125, cannotRun: 126, notFound: 127, canceled: 130 } as const;

export function jobExitCode(job: JobOutcome): number {
  if (job.status === 'success') return 0;
  if (job.status === 'canceled') return JOB_EXIT.canceled;
  const error = job.error ?? '';
  const signal = /killed by signal (SIG[A-Z0-9]+)/.exec(error)?.[1];
  if (signal) return 128 + ((constants.signals as Record<string, number>)[signal] ?? 0);
  if (/^timed out after/.test(error)) return JOB_EXIT.timedOut;
  if (/^spawn .*: ENOENT/.test(error)) return JOB_EXIT.notFound;
  if (/^spawn .*: EACCES/.test(error)) return JOB_EXIT.cannotRun;
  // Exit statuses are a byte; a force-completed job may carry any integer.
  if (job.exit_code !== null && job.exit_code > 0 && job.exit_code < 256) return job.exit_code;
  return JOB_EXIT.failedOtherwise;
}

/** One line on how a job ended: `success`, `failed (exit 3)`, `failed: killed by signal SIGKILL`. */
export function describeOutcome(job: JobOutcome): string {
  if (job.status === 'success') return 'success';
  const parts = [job.status];
  if (job.exit_code !== null) parts.push(`(exit ${job.exit_code})`);
  const head = parts.join(' ');
  return job.error ? `${head}: ${job.error}` : head;
}
