// Login and per-request authentication. Failures take the same path whether
// or not the email exists (a dummy hash is verified), and are throttled per
// (account, client address), per address and per account (rateLimiter.ts).
import { dummyPasswordHash, verifyPassword } from '../auth/passwords.js';
import { createLoginThrottle } from '../auth/rateLimiter.js';
import type { TokenIssuer, TokenProblem } from '../auth/tokens.js';
import type { EventBus } from '../events/bus.js';
import { InvalidCredentials, RateLimited } from '../errors.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { isId } from './ids.js';
import { createReadCache } from './readCache.js';
import type { Role } from './validation.js';

// Every request needs its caller's role and activity; changes are announced on the bus.
const USER_CACHE_MS = 5_000;
const USER_CACHE_ENTRIES = 10_000;

export interface Session {
  viewer: Viewer;
  expiresAt: number;
}

export function createAuthService({ db, log }: ServiceDeps, tokens: TokenIssuer, bus: EventBus) {
  const prisma = db.prisma;
  const throttle = createLoginThrottle();
  const users = createReadCache<string, { id: string; email: string; role: string; isActive: boolean } | null>(USER_CACHE_MS, USER_CACHE_ENTRIES);
  bus.subscribe('user.changed', ({ userId }) => users.invalidate(userId));

  return {
    async login(username: string, password: string, clientAddress: string) {
      const account = username.trim().toLowerCase();
      const wait = throttle.retryAfter(account, clientAddress);
      if (wait > 0) throw new RateLimited(wait, `Too many failed logins; try again in ${wait} s`);

      // A NUL can be in no stored email (and PostgreSQL refuses it in a query): a plain miss.
      const user = username.includes('\0') ? null : await prisma.user.findUnique({ where: { email: account } });
      const ok = await verifyPassword(user?.passwordHash ?? (await dummyPasswordHash()), password);
      if (!user || !ok || !user.isActive) {
        throttle.failed(account, clientAddress);
        log.info('login failed', { client: clientAddress });
        throw new InvalidCredentials();
      }
      throttle.succeeded(account, clientAddress);
      const { token, expiresIn } = await tokens.sign(user.id);
      return { accessToken: token, tokenType: 'bearer' as const, expiresIn };
    },

    /** The live session for a bearer token, or why there is none (bad or expired token, deleted or inactive user). */
    async authenticate(token: string): Promise<Session | { problem: TokenProblem }> {
      const claims = await tokens.verify(token);
      if ('problem' in claims) return claims;
      if (!isId(claims.userId)) return { problem: 'invalid token' };
      const { userId } = claims;
      const user = await users.get(userId, () => prisma.user.findUnique({ where: { id: userId }, select: { id: true, email: true, role: true, isActive: true } }));
      if (!user) return { problem: 'invalid token' };
      if (!user.isActive) return { problem: 'token revoked' };
      return { viewer: { id: user.id, email: user.email, role: user.role as Role }, expiresAt: claims.expiresAt };
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
