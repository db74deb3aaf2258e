// Concurrency limits: the global default lives in the settings table (seeded
// from DEFAULT_MAX_CONCURRENT_JOBS), overrides on the user rows.
import { NotFound } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { AuditService } from './audit.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { isId } from './ids.js';
import { authorize } from './policy.js';
import { createReadCache } from './readCache.js';
import { jobLimit, parseInput } from './validation.js';

const DEFAULT_KEY = 'default_max_concurrent_jobs';

export interface LimitsView {
  defaultMaxConcurrentJobs: number;
  overrides: { userId: string; email: string; maxConcurrentJobs: number }[];
}

/** The default limit, as every dispatcher pass reads it: cached, and cleared when a change is announced. */
export function createDefaultLimitReader({ db, config }: Pick<ServiceDeps, 'db' | 'config'>, bus: EventBus): () => Promise<number> {
  const cached = createReadCache<string, number>(5_000, 1);
  bus.subscribe('limits.changed', () => cached.invalidate());
  return () =>
    cached.get(DEFAULT_KEY, async () => {
      const row = await db.prisma.setting.findUnique({ where: { key: DEFAULT_KEY } });
      const n = row ? Number(row.value) : NaN;
      return Number.isInteger(n) && n > 0 ? n : config.defaultMaxConcurrentJobs;
    });
}

export function createLimitsService(
  { db }: ServiceDeps,
  bus: EventBus,
  { defaultLimit, onChange, audit }: { defaultLimit: () => Promise<number>; onChange: () => void; audit: AuditService },
) {
  const prisma = db.prisma;

  const audited = (viewer: Viewer, action: 'limits.set_default' | 'limits.set_user', target: string | null, act: () => Promise<LimitsView>) =>
    audit.audited(viewer, action, 'limits', target, act);

  async function view(): Promise<LimitsView> {
    const [def, users] = await Promise.all([
      defaultLimit(),
      prisma.user.findMany({ where: { maxConcurrentJobs: { not: null } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
    ]);
    return {
      defaultMaxConcurrentJobs: def,
      overrides: users.map((u) => ({ userId: u.id, email: u.email, maxConcurrentJobs: u.maxConcurrentJobs! })),
    };
  }

  return {
    defaultLimit,

    async get(viewer: Viewer): Promise<LimitsView> {
      authorize(viewer, 'limits.manage');
      return view();
    },

    setDefault: (viewer: Viewer, max: unknown) => audited(viewer, 'limits.set_default', null, async () => {
      authorize(viewer, 'limits.manage');
      const value = parseInput(jobLimit, max, ['maxConcurrentJobs']);
      await prisma.setting.upsert({ where: { key: DEFAULT_KEY }, create: { key: DEFAULT_KEY, value: String(value) }, update: { value: String(value) } });
      bus.publish('limits.changed', {});
      onChange();
      return view();
    }),

    setForUser: (viewer: Viewer, userId: string, max: unknown) => audited(viewer, 'limits.set_user', userId, async () => {
      authorize(viewer, 'limits.manage');
      const value = parseInput(jobLimit.nullable(), max, ['maxConcurrentJobs']);
      const user = isId(userId) ? await prisma.user.findUnique({ where: { id: userId } }) : null;
      if (!user) throw new NotFound('User');
      await prisma.user.update({ where: { id: userId }, data: { maxConcurrentJobs: value } });
      bus.publish('user.changed', { userId });
      onChange();
      return view();
    }),
  };
}

export type LimitsService = ReturnType<typeof createLimitsService>;
