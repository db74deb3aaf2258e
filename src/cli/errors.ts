// The CLI's own failures and the exit status each gives. A command that
// relays a job's outcome (submit --wait/--follow, wait, logs -f) exits with
// the job's status instead (jobExit.ts).

export const EXIT = {
  ok: 0,
  /** The server refused or failed the request (409, 422, 429, 500), or anything unexpected. */
  error: 1,
  /** A bad command line. */
  usage: 2,
  /** No token, or one the server refused (401), or not allowed (403). */
  auth: 3,
  /** No such job, batch or user (404). */
  notFound: 4,
  /** The server cannot be reached, or cannot serve for now (502, 503, 504). */
  unreachable: 5,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
  }
}

/** A bad command line: the message, then a pointer to the help of `command`. */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message, EXIT.usage);
  }
}
