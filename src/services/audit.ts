// The audit trail: every state-changing action, who took it, from where, on
// what, and how it ended. Entries are group-committed (a burst of submissions
// costs one INSERT) and awaited, so an action's entry is stored by the time
// its response is sent. Old entries are pruned in bounded batches.
import { BadInput, DomainError } from '../errors.js';
import type { AuditEntry } from '../generated/sqlite/client.js';
import { createGroupWriter } from '../db/groupCommit.js';
import { insertRows, type BulkTable } from '../db/insertRows.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { newId } from './ids.js';
import { pageSize, type Page } from './paging.js';
import { authorize } from './policy.js';

/** Documented in the README ("Audit trail"). */
export const AUDIT_ACTIONS = [
  'auth.login', 'auth.logout', 'auth.logout_all', 'user.revoke_sessions',
  'token.create', 'token.revoke',
  'user.create', 'user.update', 'user.update_self',
  'limits.set_default', 'limits.set_user',
  'job.submit', 'job.cancel', 'job.force_complete', 'job.purge',
  'batch.create', 'batch.cancel', 'batch.force_complete', 'batch.delete',
  'retention.run',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export type AuditTargetType = 'user' | 'job' | 'batch' | 'token' | 'session' | 'limits' | 'storage';
export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditRecord {
  action: AuditAction;
  actorId: string | null;
  clientAddress: string | null;
  targetType: AuditTargetType;
  targetId: string | null;
  outcome: AuditOutcome;
  /** What the action did, as JSON (a retention run's counts); stored, not shown in the trail's list. */
  detail?: string | null;
}

const PRUNE_BATCH = 1000;
const PRUNE_EVERY_MS = 60 * 60 * 1000;

const AUDIT_TABLE: BulkTable<AuditEntry> = {
  name: 'audit_log',
  columns: [
    ['id', (e) => e.id], ['at', (e) => e.at], ['actor_id', (e) => e.actorId], ['action', (e) => e.action], ['target_type', (e) => e.targetType],
    ['target_id', (e) => e.targetId], ['outcome', (e) => e.outcome], ['client_address', (e) => e.clientAddress], ['detail', (e) => e.detail],
  ],
  rowsPerStatement: 500,
};

/** denied: refused for lack of rights (403, or 404 for what the actor may not see); failure: anything else. */
function outcomeOf(err: unknown): AuditOutcome {
  const code = err instanceof DomainError ? err.code : null;
  return code === 'FORBIDDEN' || code === 'NOT_FOUND' ? 'denied' : 'failure';
}

function encodeCursor(e: { at: Date; id: string }): string {
  return Buffer.from(`${e.at.getTime()}|${e.id}`).toString('base64url');
}

function beforeWhere(cursor: string | null | undefined) {
  if (!cursor) return {};
  const [ms, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const at = new Date(Number(ms));
  if (!id || Number.isNaN(at.getTime())) throw new BadInput('after is not a cursor this API returned');
  return { OR: [{ at: { lt: at } }, { at, id: { lt: id } }] };
}

export function createAuditService({ db, config, log }: ServiceDeps) {
  const prisma = db.prisma;
  const writer = createGroupWriter<AuditEntry>((rows) => insertRows(db.provider, prisma, AUDIT_TABLE, rows), AUDIT_TABLE.rowsPerStatement);

  async function record(r: AuditRecord): Promise<void> {
    try {
      await writer.insert({ id: newId(), at: new Date(), detail: null, ...r });
    } catch (err) {
      // The action itself happened; losing its entry must not turn it into an error for the caller.
      log.error('audit entry not stored', { action: r.action, targetId: r.targetId, err: (err as Error).message });
    }
  }

  /**
   * Runs `act` as `actor` and records its outcome. `target` names the object
   * up front, or is read from the result (a created job's id).
   */
  async function audited<T>(
    actor: Viewer,
    action: AuditAction,
    targetType: AuditTargetType,
    target: string | null | ((result: T) => string | null),
    act: () => Promise<T>,
  ): Promise<T> {
    const base = { action, actorId: actor.id, clientAddress: actor.address, targetType };
    const known = typeof target === 'function' ? null : target;
    let result: T;
    try {
      result = await act();
    } catch (err) {
      await record({ ...base, targetId: known, outcome: outcomeOf(err) });
      throw err;
    }
    await record({ ...base, targetId: typeof target === 'function' ? target(result) : known, outcome: 'success' });
    return result;
  }

  async function list(
    viewer: Viewer,
    args: { actorId?: string | null; action?: string | null; targetId?: string | null; first?: number | null; after?: string | null },
  ): Promise<Page<AuditEntry>> {
    authorize(viewer, 'audit.read');
    const size = pageSize(args.first);
    const rows = await prisma.auditEntry.findMany({
      where: {
        ...(args.actorId && { actorId: args.actorId }),
        ...(args.action && { action: args.action }),
        ...(args.targetId && { targetId: args.targetId }),
        ...beforeWhere(args.after),
      },
      orderBy: [{ at: 'desc' }, { id: 'desc' }],
      take: size + 1,
    });
    const nodes = rows.slice(0, size);
    const edges = nodes.map((node) => ({ cursor: encodeCursor(node), node }));
    return {
      edges,
      pageInfo: { hasNextPage: rows.length > size, hasPreviousPage: Boolean(args.after), startCursor: edges[0]?.cursor ?? null, endCursor: edges.at(-1)?.cursor ?? null },
    };
  }

  /** Deletes entries older than the retention, a bounded batch at a time; returns how many went. */
  async function prune(now = Date.now()): Promise<number> {
    const cutoff = new Date(now - config.auditRetentionDays * 86_400_000);
    let total = 0;
    for (;;) {
      const old = await prisma.auditEntry.findMany({ where: { at: { lt: cutoff } }, select: { id: true }, take: PRUNE_BATCH });
      if (old.length === 0) return total;
      const { count } = await prisma.auditEntry.deleteMany({ where: { id: { in: old.map((o) => o.id) } } });
      total += count;
      if (old.length < PRUNE_BATCH) return total;
    }
  }

  /** Prunes now and then every hour, until the returned stop is called. Any process may: deletes are idempotent. */
  function schedulePrune(): () => void {
    const run = () => void prune().then(
      (n) => n > 0 && log.info('audit entries pruned', { count: n, retentionDays: config.auditRetentionDays }),
      (err: Error) => log.warn('audit prune failed', { err: err.message }),
    );
    run();
    const timer = setInterval(run, PRUNE_EVERY_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  return { record, audited, list, prune, schedulePrune };
}

export type AuditService = ReturnType<typeof createAuditService>;
