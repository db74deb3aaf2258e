// Keyset paging over (created_at, id): cursors carry both, so a page costs
// one indexed range scan however deep it is.
import { z } from 'zod';
import { BadInput } from '../errors.js';

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

/** The page size rule, on a number schema (REST coerces query strings first). */
export const pageSizeRule = (n: z.ZodNumber) => n.int().min(1).max(MAX_PAGE);

/** Rules of list arguments, shared by every list and by both transports. */
export const listFields = {
  /** A substring of the name. */
  name: z.string().min(1).max(200),
  /** A user, job or batch id to narrow by (one that exists nowhere matches nothing). */
  id: z.string().max(100),
  cursor: z.string().max(200),
  order: z.enum(['asc', 'desc']),
};

export function encodeCursor(row: { createdAt: Date; id: string }): string {
  return Buffer.from(`${row.createdAt.getTime()}|${row.id}`).toString('base64url');
}

export type SortOrder = 'asc' | 'desc';

/** Rows strictly past `cursor` walking in `order` (asc: later ones; desc: earlier ones). */
export function afterWhere(cursor: string | null | undefined, order: SortOrder = 'asc', field = 'after') {
  if (!cursor) return {};
  const [ms, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const at = new Date(Number(ms));
  if (!id || Number.isNaN(at.getTime())) throw new BadInput(`${field} is not a cursor this API returned`);
  const cmp = order === 'asc' ? 'gt' : 'lt';
  return { OR: [{ createdAt: { [cmp]: at } }, { createdAt: at, id: { [cmp]: id } }] };
}

export const orderBy = (order: SortOrder) => [{ createdAt: order }, { id: order }];

/**
 * One window of a keyset-paged list in `order`: forward (`first`/`after`) or
 * backward (`last`/`before`, the rows just before the cursor, still answered
 * in `order`). `find` runs the query with the given extra where, orderBy and take.
 */
export async function pageOf<T extends { createdAt: Date; id: string }>(
  args: { order?: SortOrder | null; first?: number | null; after?: string | null; last?: number | null; before?: string | null },
  find: (q: { where: object; orderBy: ReturnType<typeof orderBy>; take: number }) => Promise<T[]>,
): Promise<Page<T>> {
  const order = args.order ?? 'asc';
  const backward = args.last != null || args.before != null;
  if (backward && (args.first != null || args.after != null)) throw new BadInput('first/after and last/before cannot be combined');
  if (!backward) {
    const size = pageSize(args.first);
    const rows = await find({ where: afterWhere(args.after, order), orderBy: orderBy(order), take: size + 1 });
    return toPage(rows, size, Boolean(args.after));
  }
  const size = pageSize(args.last, 'last');
  const reverse: SortOrder = order === 'asc' ? 'desc' : 'asc';
  const rows = await find({ where: afterWhere(args.before, reverse, 'before'), orderBy: orderBy(reverse), take: size + 1 });
  const page = toPage(rows.slice(0, size).reverse(), size, false);
  page.pageInfo.hasPreviousPage = rows.length > size;
  page.pageInfo.hasNextPage = Boolean(args.before);
  return page;
}

export function pageSize(first: number | null | undefined, field = 'first'): number {
  if (first === null || first === undefined) return DEFAULT_PAGE;
  if (!pageSizeRule(z.number()).safeParse(first).success) throw new BadInput(`${field} must be between 1 and ${MAX_PAGE}`);
  return first;
}

/** rows: up to size + 1 rows; the extra one only says there is a next page. */
export function toPage<T extends { createdAt: Date; id: string }>(rows: T[], size: number, hasPrevious: boolean): Page<T> {
  const nodes = rows.slice(0, size);
  const edges = nodes.map((node) => ({ cursor: encodeCursor(node), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > size,
      hasPreviousPage: hasPrevious,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

export const ORDER = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];
