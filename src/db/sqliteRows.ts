// Rows read with direct SQLite statements, turned into the model type Prisma
// would return: DATETIME text to Date, BOOLEAN 0/1 to boolean, snake_case
// columns to the model's field names. `satisfies` makes a column added to the
// schema a compile error here rather than a missing field at run time.
import type { Job } from '../generated/sqlite/client.js';

type Row = Record<string, unknown>;

const date = (v: unknown) => (v === null ? null : new Date(v as string));
const bool = (v: unknown) => v === 1;

export function jobFromRow(r: Row): Job {
  return {
    id: r.id as string,
    name: r.name as string,
    command: r.command as string,
    env: r.env as string,
    payload: r.payload as string | null,
    workingDir: r.working_dir as string,
    ownsWorkingDir: bool(r.owns_working_dir),
    status: r.status as string,
    exitCode: r.exit_code as number | null,
    error: r.error as string | null,
    ownerId: r.owner_id as string,
    batchId: r.batch_id as string | null,
    timeoutSeconds: r.timeout_seconds as number | null,
    createdAt: date(r.created_at)!,
    startedAt: date(r.started_at),
    finishedAt: date(r.finished_at),
    workerId: r.worker_id as string | null,
    attempt: r.attempt as number,
    stopRequest: r.stop_request as string | null,
    pid: r.pid as number | null,
    stdoutBytes: r.stdout_bytes as number,
    stderrBytes: r.stderr_bytes as number,
    stdoutTruncated: bool(r.stdout_truncated),
    stderrTruncated: bool(r.stderr_truncated),
    limits: r.limits as string,
    logsRemovedAt: date(r.logs_removed_at),
  } satisfies Record<keyof Job, unknown>;
}
