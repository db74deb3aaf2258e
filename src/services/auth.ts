// Login, per-request authentication and logging out. Failures take the same
// path whether or not the email exists (a dummy hash is verified), and are
// throttled per (account, client address), per address and per account
// (rateLimiter.ts). A bearer token is a JWT naming a password session, or an
// API token (apiTokens.ts); either is good only while its session or token is
// unrevoked and its user active, and the role is always the user's current one.
import { dummyPasswordHash, verifyPassword } from '../auth/passwords.js';
import { createLoginThrottle } from '../auth/rateLimiter.js';
import type { TokenIssuer, TokenProblem } from '../auth/tokens.js';
import type { EventBus } from '../events/bus.js';
import { InvalidCredentials, NotFound, RateLimited } from '../errors.js';
import type { ApiTokenService } from './apiTokens.js';
import type { AuditService } from './audit.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { isId } from './ids.js';
import { authorize, type Scope } from './policy.js';
import { createReadCache } from './readCache.js';
import { AUTH_CACHE_MS, type SessionStore } from './sessions.js';
import type { Role } from './validation.js';

export interface Session {
  viewer: Viewer;
  expiresAt: number;
}

type UserRow = { id: string; email: string; role: string; isActive: boolean };
type Credential = { sessionId: string; tokenId: null; scopes: null } | { sessionId: null; tokenId: string; scopes: Scope[] };

export function createAuthService(
  { db, log }: ServiceDeps,
  tokens: TokenIssuer,
  bus: EventBus,
  { sessions, apiTokens, audit }: { sessions: SessionStore; apiTokens: ApiTokenService; audit: AuditService },
) {
  const prisma = db.prisma;
  const throttle = createLoginThrottle();
  const users = createReadCache<string, UserRow | null>(AUTH_CACHE_MS, 10_000);
  bus.subscribe('user.changed', ({ userId }) => users.invalidate(userId));
  const loadUser = (id: string) => prisma.user.findUnique({ where: { id }, select: { id: true, email: true, role: true, isActive: true } });

  /** The principal, or why there is none: the user is gone or inactive. */
  function principal(user: UserRow | null, credential: Credential, address: string): Viewer | { problem: TokenProblem } {
    if (!user) return { problem: 'invalid token' };
    if (!user.isActive) return { problem: 'token revoked' };
    return { id: user.id, email: user.email, role: user.role as Role, address, ...credential };
  }

  async function fromJwt(token: string, address: string, fresh: boolean): Promise<Session | { problem: TokenProblem }> {
    const claims = await tokens.verify(token);
    if ('problem' in claims) return claims;
    if (!isId(claims.userId) || !isId(claims.sessionId)) return { problem: 'invalid token' };
    const row = await sessions.get(claims.sessionId, fresh);
    if (!row || row.userId !== claims.userId) return { problem: 'invalid token' };
    if (row.revokedAt) return { problem: 'token revoked' };
    const user = fresh ? await loadUser(claims.userId) : await users.get(claims.userId, () => loadUser(claims.userId));
    const p = principal(user, { sessionId: row.id, tokenId: null, scopes: null }, address);
    return 'problem' in p ? p : { viewer: p, expiresAt: claims.expiresAt };
  }

  async function fromApiToken(token: string, address: string, fresh: boolean): Promise<Session | { problem: TokenProblem }> {
    const found = await apiTokens.lookup(token);
    const row = found && fresh ? await apiTokens.fresh(found.id) : found;
    if (!row) return { problem: 'invalid token' };
    if (row.revokedAt) return { problem: 'token revoked' };
    if (row.expiresAt.getTime() <= Date.now()) return { problem: 'token expired' };
    const user = fresh ? await loadUser(row.userId) : await users.get(row.userId, () => loadUser(row.userId));
    const p = principal(user, { sessionId: null, tokenId: row.id, scopes: JSON.parse(row.scopes) as Scope[] }, address);
    if ('problem' in p) return p;
    apiTokens.touch(row.id);
    return { viewer: p, expiresAt: row.expiresAt.getTime() };
  }

  function authenticate(token: string, address: string, fresh = false): Promise<Session | { problem: TokenProblem }> {
    return apiTokens.isApiToken(token) ? fromApiToken(token, address, fresh) : fromJwt(token, address, fresh);
  }

  return {
    async login(username: string, password: string, clientAddress: string) {
      const account = username.trim().toLowerCase();
      const wait = throttle.retryAfter(account, clientAddress);
      if (wait > 0) throw new RateLimited(wait, `Too many failed logins; try again in ${wait} s`);

      // A NUL can be in no stored email (and PostgreSQL refuses it in a query): a plain miss.
      const user = username.includes('\0') ? null : await prisma.user.findUnique({ where: { email: account } });
      const ok = await verifyPassword(user?.passwordHash ?? (await dummyPasswordHash()), password);
      const entry = { action: 'auth.login', actorId: user?.id ?? null, clientAddress, targetType: 'user', targetId: user?.id ?? null } as const;
      if (!user || !ok || !user.isActive) {
        throttle.failed(account, clientAddress);
        log.info('login failed', { client: clientAddress });
        await audit.record({ ...entry, outcome: 'failure' });
        throw new InvalidCredentials();
      }
      throttle.succeeded(account, clientAddress);
      const session = await sessions.create(user.id, tokens.ttlSeconds, clientAddress);
      const { token, expiresIn } = await tokens.sign(user.id, session.id);
      await audit.record({ ...entry, outcome: 'success' });
      return { accessToken: token, tokenType: 'bearer' as const, expiresIn };
    },

    /** The principal for a bearer token, or why there is none (bad, expired or revoked token, deleted or inactive user). */
    authenticate: (token: string, address: string) => authenticate(token, address),

    /**
     * `viewer` as it stands now, read past every cache, or null when its
     * session or token no longer counts. Open streams call this when the
     * user's access may have changed.
     */
    async revalidate(viewer: Viewer): Promise<Viewer | null> {
      let row: { userId: string; revoked: boolean; expired: boolean; scopes: Scope[] | null } | null = null;
      if (viewer.sessionId) {
        const s = await sessions.get(viewer.sessionId, true);
        if (s) row = { userId: s.userId, revoked: s.revokedAt !== null, expired: s.expiresAt.getTime() <= Date.now(), scopes: null };
      } else if (viewer.tokenId) {
        const t = await apiTokens.fresh(viewer.tokenId);
        if (t) row = { userId: t.userId, revoked: t.revokedAt !== null, expired: t.expiresAt.getTime() <= Date.now(), scopes: JSON.parse(t.scopes) as Scope[] };
      }
      if (!row || row.revoked || row.expired || row.userId !== viewer.id) return null;
      const user = await loadUser(viewer.id);
      if (!user?.isActive) return null;
      return { ...viewer, email: user.email, role: user.role as Role, scopes: row.scopes };
    },

    /** Calls `handler` with the id of every user whose access may have changed (on any process); returns the unsubscribe. */
    onAccessChange(handler: (userId: string) => void): () => void {
      return bus.subscribe('user.changed', ({ userId }) => handler(userId));
    },

    async logout(viewer: Viewer): Promise<void> {
      await audit.audited(viewer, 'auth.logout', 'session', viewer.sessionId, async () => {
        authorize(viewer, 'session.logout');
        await sessions.revoke(viewer.sessionId!, viewer.id);
      });
    },

    async logoutAll(viewer: Viewer): Promise<void> {
      await audit.audited(viewer, 'auth.logout_all', 'user', viewer.id, async () => {
        authorize(viewer, 'session.logout');
        await sessions.revokeAll(viewer.id);
      });
    },

    async revokeSessions(viewer: Viewer, userId: string): Promise<void> {
      await audit.audited(viewer, 'user.revoke_sessions', 'user', userId, async () => {
        authorize(viewer, 'user.manage');
        const user = isId(userId) ? await prisma.user.findUnique({ where: { id: userId }, select: { id: true } }) : null;
        if (!user) throw new NotFound('User');
        const count = await sessions.revokeAll(userId);
        log.info('sessions revoked', { userId, count, by: viewer.id });
      });
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
