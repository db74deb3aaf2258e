// Multi-row INSERT statements for the rows written in bulk on every request
// (jobs, audit entries): one statement per group, where Prisma's createMany
// compiles a new plan for every group size and builds each row again.
import type { Database } from './client.js';

type Executor = Pick<Database['prisma'], '$executeRawUnsafe'>;

/** The text the SQLite adapter itself writes for a DateTime, so ordering and parsing stay uniform. */
export const sqliteTime = (d: Date) => d.toISOString().replace('Z', '+00:00');

/** A table written in bulk: its name, and each column with how a row gives its value. */
export interface BulkTable<T> {
  name: string;
  columns: readonly (readonly [column: string, value: (row: T) => string | number | boolean | Date | null])[];
  /** Rows per statement: within both providers' limits on bound parameters. */
  rowsPerStatement: number;
}

/**
 * Inserts `rows`, skipping ids already there: a retry after a commit whose
 * answer was lost finds its rows stored (ids are ours), so it is harmless.
 */
export async function insertRows<T>(provider: Database['provider'], tx: Executor, table: BulkTable<T>, rows: readonly T[]): Promise<void> {
  const pg = provider === 'postgresql';
  // SQLite stores booleans as integers and DateTimes as text; PostgreSQL's driver takes them as they are.
  const param = (v: string | number | boolean | Date | null) => (pg ? v : typeof v === 'boolean' ? (v ? 1 : 0) : v instanceof Date ? sqliteTime(v) : v);
  const names = table.columns.map(([c]) => c).join(', ');
  for (let start = 0; start < rows.length; start += table.rowsPerStatement) {
    const part = rows.slice(start, start + table.rowsPerStatement);
    let n = 0;
    const placeholder = () => (pg ? `$${++n}` : '?');
    const values = part.map(() => `(${table.columns.map(placeholder).join(', ')})`).join(', ');
    const params = part.flatMap((r) => table.columns.map(([, value]) => param(value(r))));
    await tx.$executeRawUnsafe(`INSERT INTO ${table.name} (${names}) VALUES ${values} ON CONFLICT (id) DO NOTHING`, ...params);
  }
}
