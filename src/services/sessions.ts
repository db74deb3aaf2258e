// Password sessions: one row per login, named by the JWT's `sid`. A session
// is good while its row is unrevoked and its user active. Every revocation
// is announced on the bus ('user.changed'), which reaches every process and
// clears the caches below; their TTL bounds how long a lost announcement
// could keep a revoked session alive.
import type { EventBus } from '../events/bus.js';
import type { ServiceDeps } from './deps.js';
import { newId } from './ids.js';
import { createReadCache } from './readCache.js';

export const AUTH_CACHE_MS = 5_000;
const CACHE_ENTRIES = 10_000;

export interface SessionRow {
  id: string;
  userId: string;
  expiresAt: Date;
  revokedAt: Date | null;
}

export function createSessionStore({ db }: Pick<ServiceDeps, 'db'>, bus: EventBus) {
  const prisma = db.prisma;
  const cache = createReadCache<string, SessionRow | null>(AUTH_CACHE_MS, CACHE_ENTRIES);
  // Revocations are rare: any of them clears every cached session.
  bus.subscribe('user.changed', () => cache.invalidate());
  const select = { id: true, userId: true, expiresAt: true, revokedAt: true } as const;

  const changed = (userId: string) => bus.publish('user.changed', { userId });

  return {
    async create(userId: string, ttlSeconds: number, clientAddress: string): Promise<SessionRow> {
      const now = Date.now();
      // Expired sessions of this user go as a new one comes: the table holds what is still alive.
      await prisma.session.deleteMany({ where: { userId, expiresAt: { lt: new Date(now) } } });
      return prisma.session.create({ data: { id: newId(), userId, expiresAt: new Date(now + ttlSeconds * 1000), clientAddress }, select });
    },

    get(id: string, fresh = false): Promise<SessionRow | null> {
      const load = () => prisma.session.findUnique({ where: { id }, select });
      return fresh ? load() : cache.get(id, load);
    },

    /** The user's role, activity or limits changed: caches everywhere drop their copies, open streams re-check. */
    announce: changed,

    async revoke(id: string, userId: string): Promise<void> {
      await prisma.session.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
      changed(userId);
    },

    /** Every live session of the user, but `except` (the one that asked, on a self-service password change). */
    async revokeAll(userId: string, except: string | null = null): Promise<number> {
      const { count } = await prisma.session.updateMany({
        where: { userId, revokedAt: null, ...(except && { id: { not: except } }) },
        data: { revokedAt: new Date() },
      });
      changed(userId);
      return count;
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
