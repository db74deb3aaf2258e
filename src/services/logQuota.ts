// The per-user stored-log quota (LOG_QUOTA_BYTES), answered at submission.
// A user's usage is the output their finished jobs keep stored (stdout and
// stderr bytes of jobs whose output was not removed); a running job counts
// once it has finished. At or over the quota a submission is refused with
// 403 naming both figures (LOG_QUOTA_MODE=reject, the default), or the
// user's oldest finished jobs lose their output until the user is under it
// again (evict; their logs then answer 410).
//
// Usage is read at most once a second per user and process: a burst of
// submissions costs one sum, and a finished job counts within a second.
import { Forbidden } from '../errors.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { TERMINAL } from './jobSpec.js';
import type { LogRemoval } from './logRemoval.js';

const USAGE_TTL_MS = 1000;
const MAX_CACHED_USERS = 10_000;

const mib = (bytes: number) => `${bytes} bytes (${(bytes / 1048576).toFixed(1)} MiB)`;

export function createLogQuota({ db, config, log }: ServiceDeps, removal: LogRemoval) {
  const { logQuotaBytes: quota, logQuotaMode: mode, batchRows } = config.retention;
  const cache = new Map<string, { bytes: number; at: number }>();

  /** Output the user's jobs keep stored, in bytes. */
  async function usage(userId: string): Promise<number> {
    const sum = await db.prisma.job.aggregate({ where: { ownerId: userId, logsRemovedAt: null }, _sum: { stdoutBytes: true, stderrBytes: true } });
    return (sum._sum.stdoutBytes ?? 0) + (sum._sum.stderrBytes ?? 0);
  }

  async function cachedUsage(userId: string, now: number): Promise<number> {
    const hit = cache.get(userId);
    if (hit && now - hit.at < USAGE_TTL_MS) return hit.bytes;
    const bytes = await usage(userId);
    if (cache.size >= MAX_CACHED_USERS) cache.clear();
    cache.set(userId, { bytes, at: now });
    return bytes;
  }

  /**
   * Removes the output of the user's oldest finished jobs until at least
   * `need` bytes went (or none is left); returns the bytes freed. One page of
   * jobs at most per submission, so a submission's cost stays bounded.
   */
  async function evict(userId: string, need: number): Promise<number> {
    const oldest = await db.prisma.job.findMany({
      where: { ownerId: userId, status: { in: [...TERMINAL] }, logsRemovedAt: null, OR: [{ stdoutBytes: { gt: 0 } }, { stderrBytes: { gt: 0 } }] },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      select: { id: true, stdoutBytes: true, stderrBytes: true },
      take: batchRows,
    });
    const picked: string[] = [];
    let freed = 0;
    for (const j of oldest) {
      if (freed >= need) break;
      picked.push(j.id);
      freed += j.stdoutBytes + j.stderrBytes;
    }
    if (picked.length === 0) return 0;
    const removed = await removal.remove(picked, new Date());
    log.info('log quota: oldest output evicted', { userId, jobs: removed.jobs, bytes: freed, quota });
    return freed;
  }

  /** Throws Forbidden when `viewer` is at or over the quota (after eviction, in evict mode). */
  async function check(viewer: Viewer, now = Date.now()): Promise<void> {
    if (quota === null) return;
    let used = await cachedUsage(viewer.id, now);
    if (used < quota) return;
    if (mode === 'evict') {
      used -= await evict(viewer.id, used - quota + 1);
      cache.set(viewer.id, { bytes: used, at: now });
      if (used < quota) return;
    }
    throw new Forbidden(
      `Stored-log quota reached: your finished jobs keep ${mib(used)} of output, the quota (LOG_QUOTA_BYTES) is ${mib(quota)}; ` +
        'purge jobs you no longer need (DELETE /jobs/{id}/purge) or ask an admin to raise the quota',
    );
  }

  return { check };
}

export type LogQuota = ReturnType<typeof createLogQuota>;
