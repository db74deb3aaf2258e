// Concurrency limits: the global default lives in the settings table (seeded
// from DEFAULT_MAX_CONCURRENT_JOBS), overrides on the user rows.
import { Forbidden, NotFound } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { isId } from './ids.js';
import { createReadCache } from './readCache.js';
import { jobLimit, parseInput } from './validation.js';

const DEFAULT_KEY = 'default_max_concurrent_jobs';

export interface LimitsView {
  defaultMaxConcurrentJobs: number;
  overrides: { userId: string; email: string; maxConcurrentJobs: number }[];
}

export function createLimitsService({ db, config }: ServiceDeps, bus: EventBus, onChange: () => void) {
  const prisma = db.prisma;
  // Read by every dispatcher pass; changes are announced on the bus.
  const cached = createReadCache<string, number>(5_000, 1);
  bus.subscribe('limits.changed', () => cached.invalidate());

  function requireAdmin(viewer: Viewer) {
    if (viewer.role !== 'admin') throw new Forbidden('Only admins can manage users and limits');
  }

  function defaultLimit(): Promise<number> {
    return cached.get(DEFAULT_KEY, async () => {
      const row = await prisma.setting.findUnique({ where: { key: DEFAULT_KEY } });
      const n = row ? Number(row.value) : NaN;
      return Number.isInteger(n) && n > 0 ? n : config.defaultMaxConcurrentJobs;
    });
  }

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
      requireAdmin(viewer);
      return view();
    },

    async setDefault(viewer: Viewer, max: unknown): Promise<LimitsView> {
      requireAdmin(viewer);
      const value = parseInput(jobLimit, max, ['maxConcurrentJobs']);
      await prisma.setting.upsert({ where: { key: DEFAULT_KEY }, create: { key: DEFAULT_KEY, value: String(value) }, update: { value: String(value) } });
      bus.publish('limits.changed', {});
      onChange();
      return view();
    },

    async setForUser(viewer: Viewer, userId: string, max: unknown): Promise<LimitsView> {
      requireAdmin(viewer);
      const value = parseInput(jobLimit.nullable(), max, ['maxConcurrentJobs']);
      const user = isId(userId) ? await prisma.user.findUnique({ where: { id: userId } }) : null;
      if (!user) throw new NotFound('User');
      await prisma.user.update({ where: { id: userId }, data: { maxConcurrentJobs: value } });
      onChange();
      return view();
    },
  };
}

export type LimitsService = ReturnType<typeof createLimitsService>;
