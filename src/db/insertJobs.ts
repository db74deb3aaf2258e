// Bulk insert of job rows in multi-row INSERT statements: a 1000-job batch
// is four statements instead of Prisma's per-row createMany work.
import type { Database } from './client.js';

export interface NewJobRow {
  id: string;
  name: string;
  command: string;
  env: string;
  payload: string | null;
  workingDir: string;
  ownsWorkingDir: boolean;
  timeoutSeconds: number | null;
  /** JSON of the limits in force. */
  limits: string;
  status: string;
  ownerId: string;
  batchId: string | null;
  createdAt: Date;
}

const COLUMNS = ['id', 'name', 'command', 'env', 'payload', 'working_dir', 'owns_working_dir', 'timeout_seconds', 'limits', 'status', 'owner_id', 'batch_id', 'created_at'];
export const ROWS_PER_STATEMENT = 250;

type Executor = Pick<Database['prisma'], '$executeRawUnsafe'>;

/** The text the SQLite adapter itself writes for a DateTime, so ordering and parsing stay uniform. */
export const sqliteTime = (d: Date) => d.toISOString().replace('Z', '+00:00');

export async function insertJobs(provider: Database['provider'], tx: Executor, rows: NewJobRow[]): Promise<void> {
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    const part = rows.slice(start, start + ROWS_PER_STATEMENT);
    let n = 0;
    const placeholder = () => (provider === 'postgresql' ? `$${++n}` : '?');
    const values = part.map(() => `(${COLUMNS.map(placeholder).join(', ')})`).join(', ');
    const params = part.flatMap((r) => [
      r.id, r.name, r.command, r.env, r.payload, r.workingDir,
      provider === 'postgresql' ? r.ownsWorkingDir : r.ownsWorkingDir ? 1 : 0,
      r.timeoutSeconds, r.limits, r.status, r.ownerId, r.batchId,
      provider === 'postgresql' ? r.createdAt : sqliteTime(r.createdAt),
    ]);
    // A retry after a commit whose answer was lost finds its rows there already (ids are ours).
    await tx.$executeRawUnsafe(`INSERT INTO jobs (${COLUMNS.join(', ')}) VALUES ${values} ON CONFLICT (id) DO NOTHING`, ...params);
  }
}
