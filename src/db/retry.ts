// Transient database failures (a connection reset or terminated by an
// administrator, a failover, a serialization conflict) are retried with
// backoff by the writes that must not turn into a false outcome or a lost
// log batch. Every caller's statement is idempotent or fenced, so running it
// again after a commit whose answer was lost does no harm.

const TRANSIENT_CODES = new Set([
  // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, connection exceptions, too many connections
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300',
  // serialization failure, deadlock
  '40001', '40P01',
  // Prisma: server unreachable, server closed the connection, transaction conflict
  'P1001', 'P1002', 'P1017', 'P2034',
  // sockets
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
]);
const TRANSIENT_TEXT = /connection terminated|terminating connection|connection error|connection (is |was |has been )?closed|closed the connection|socket hang ?up|Transaction already closed|transaction not found|timeout exceeded when trying to connect/i;
// How Prisma's driver adapters classify a failure (meta.driverAdapterError.cause.kind).
const TRANSIENT_KINDS = new Set(['ConnectionClosed', 'SocketTimeout', 'DatabaseNotReachable', 'TooManyConnections', 'TransactionAlreadyClosed', 'TransactionWriteConflict']);

function* causes(err: unknown, depth = 0): Generator<Record<string, unknown>> {
  if (!err || typeof err !== 'object' || depth > 5) return;
  const e = err as Record<string, unknown>;
  yield e;
  yield* causes(e.cause, depth + 1);
  const meta = e.meta as Record<string, unknown> | undefined;
  yield* causes(meta?.driverAdapterError, depth + 1);
}

/** True for a failure that says nothing about the statement: the same statement may succeed on a fresh connection. */
export function isTransientDbError(err: unknown): boolean {
  for (const e of causes(err)) {
    for (const key of ['code', 'originalCode']) if (typeof e[key] === 'string' && TRANSIENT_CODES.has(e[key] as string)) return true;
    for (const key of ['message', 'originalMessage']) if (typeof e[key] === 'string' && TRANSIENT_TEXT.test(e[key] as string)) return true;
    if (typeof e.kind === 'string' && TRANSIENT_KINDS.has(e.kind)) return true;
  }
  return false;
}

interface RetryOptions {
  /** Stop retrying (and rethrow) once this says the result no longer matters, e.g. the lease was lost. */
  giveUp?: () => boolean;
  /** Attempts in all; default: until giveUp says so (or 8 when there is no giveUp). */
  attempts?: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const BASE_MS = 50;
const MAX_DELAY_MS = 2000;

/** Runs `fn`, retrying transient database failures with jittered exponential backoff (50 ms doubling, at most 2 s apart). */
export async function retryTransient<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? (opts.giveUp ? Infinity : 8);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientDbError(err) || attempt >= attempts || opts.giveUp?.()) throw err;
      const delay = Math.min(MAX_DELAY_MS, BASE_MS * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
