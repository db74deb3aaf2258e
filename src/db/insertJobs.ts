// Bulk insert of job rows: a 1000-job batch is four statements.
import type { Database } from './client.js';
import { insertRows, type BulkTable } from './insertRows.js';

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

export const JOBS_TABLE: BulkTable<NewJobRow> = {
  name: 'jobs',
  columns: [
    ['id', (r) => r.id], ['name', (r) => r.name], ['command', (r) => r.command], ['env', (r) => r.env], ['payload', (r) => r.payload],
    ['working_dir', (r) => r.workingDir], ['owns_working_dir', (r) => r.ownsWorkingDir], ['timeout_seconds', (r) => r.timeoutSeconds],
    ['limits', (r) => r.limits], ['status', (r) => r.status], ['owner_id', (r) => r.ownerId], ['batch_id', (r) => r.batchId],
    ['created_at', (r) => r.createdAt],
  ],
  rowsPerStatement: 250,
};

export const insertJobs = (provider: Database['provider'], tx: Pick<Database['prisma'], '$executeRawUnsafe'>, rows: NewJobRow[]) =>
  insertRows(provider, tx, JOBS_TABLE, rows);
