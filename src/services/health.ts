import type { ServiceDeps } from './deps.js';

export interface HealthReport {
  status: 'ok' | 'unavailable';
  database: boolean;
  redis: boolean | null;
  version: string;
}

export function createHealthService({ db }: ServiceDeps, version: string, pingRedis: (() => Promise<boolean>) | null) {
  return {
    async check(): Promise<HealthReport> {
      const database = await db.prisma.$queryRawUnsafe('SELECT 1').then(() => true, () => false);
      const redis = pingRedis ? await pingRedis().catch(() => false) : null;
      return { status: database && redis !== false ? 'ok' : 'unavailable', database, redis, version };
    },
  };
}
