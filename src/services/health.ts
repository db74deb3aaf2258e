import type { IsolationReport } from '../engine/isolation.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { authorize } from './policy.js';

export interface HealthReport {
  status: 'ok' | 'unavailable';
  database: boolean;
  redis: boolean | null;
  version: string;
  /** How isolated this process's jobs are ('none': they cannot be here, and are refused); null when it runs none (serve --no-worker). */
  isolation: IsolationReport['level'] | null;
}

/** `isolation` is what this process's spawner reported, or null when the process runs no jobs. */
export function createHealthService({ db }: ServiceDeps, version: string, pingRedis: (() => Promise<boolean>) | null, isolation: () => IsolationReport | null) {
  return {
    async check(): Promise<HealthReport> {
      const database = await db.prisma.$queryRawUnsafe('SELECT 1').then(() => true, () => false);
      const redis = pingRedis ? await pingRedis().catch(() => false) : null;
      return { status: database && redis !== false ? 'ok' : 'unavailable', database, redis, version, isolation: isolation()?.level ?? null };
    },

    /** The full isolation report (admins only): as whom jobs run, the kernel features in use and what is missing. */
    isolation(viewer: Viewer): IsolationReport | null {
      authorize(viewer, 'system.read');
      return isolation();
    },
  };
}
