// Keyset paging over (created_at, id): cursors carry both, so a page costs
// one indexed range scan however deep it is.
import { BadInput } from '../errors.js';

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

export function encodeCursor(row: { createdAt: Date; id: string }): string {
  return Buffer.from(`${row.createdAt.getTime()}|${row.id}`).toString('base64url');
}

export function afterWhere(cursor: string | null | undefined) {
  if (!cursor) return {};
  const [ms, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const at = new Date(Number(ms));
  if (!id || Number.isNaN(at.getTime())) throw new BadInput('after is not a cursor this API returned');
  return { OR: [{ createdAt: { gt: at } }, { createdAt: at, id: { gt: id } }] };
}

export function pageSize(first: number | null | undefined): number {
  if (first === null || first === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw new BadInput(`first must be between 1 and ${MAX_PAGE}`);
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
