// Personal access tokens for scripts and CI: `jrt_` and 256 random bits,
// shown once, stored as a SHA-256 (a token is random, so no slow hash is
// needed), with a name, an expiry and scopes that only narrow the owner's
// role. Every use re-reads the owner's role and activity (through the
// caches, which every change clears).
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { NotFound, ValidationFailed } from '../errors.js';
import type { ApiToken } from '../generated/sqlite/client.js';
import type { EventBus } from '../events/bus.js';
import type { AuditService } from './audit.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { isId, newId } from './ids.js';
import { authorize, may, SCOPES, scopesBeyondRole, type Scope } from './policy.js';
import { createReadCache } from './readCache.js';
import { AUTH_CACHE_MS } from './sessions.js';
import { parseInput, text, type Role } from './validation.js';

export const TOKEN_PREFIX = 'jrt_';
const MAX_TOKEN_DAYS = 365;
const DEFAULT_TOKEN_DAYS = 30;
// last_used_at is for people deciding which token to revoke: a minute is precise enough, and spares a write per request.
const TOUCH_EVERY_MS = 60_000;

// Field rules, shared with the REST body schema.
export const tokenFields = {
  name: text().trim().min(1).max(100),
  scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length).refine((s) => new Set(s).size === s.length, 'scopes must not repeat'),
  expiresInDays: z.number().int().min(1).max(MAX_TOKEN_DAYS).nullish(),
  userId: z.string().max(100).nullish(),
};

export const createTokenInput = z.strictObject(tokenFields);

export interface ApiTokenView {
  id: string;
  userId: string;
  name: string;
  scopes: Scope[];
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
}

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

function view(row: ApiToken): ApiTokenView {
  return { id: row.id, userId: row.userId, name: row.name, scopes: JSON.parse(row.scopes) as Scope[], createdAt: row.createdAt, expiresAt: row.expiresAt, lastUsedAt: row.lastUsedAt };
}

export function createApiTokenService({ db, log }: ServiceDeps, bus: EventBus, audit: AuditService) {
  const prisma = db.prisma;
  const cache = createReadCache<string, ApiToken | null>(AUTH_CACHE_MS, 10_000);
  bus.subscribe('user.changed', () => cache.invalidate());
  const touched = new Map<string, number>();

  /** The user a token is made for or listed of: oneself, or (admins) anyone. */
  async function subject(viewer: Viewer, userId: string | null | undefined): Promise<{ id: string; role: Role }> {
    authorize(viewer, 'token.manage');
    if (!userId || userId === viewer.id) return viewer;
    authorize(viewer, 'user.manage');
    const user = isId(userId) ? await prisma.user.findUnique({ where: { id: userId }, select: { id: true, role: true } }) : null;
    if (!user) throw new NotFound('User');
    return { id: user.id, role: user.role as Role };
  }

  return {
    isApiToken: (token: string) => token.startsWith(TOKEN_PREFIX),

    /** The stored token for a presented secret (cached), or null. */
    lookup(token: string): Promise<ApiToken | null> {
      const hash = hashOf(token);
      return cache.get(hash, () => prisma.apiToken.findUnique({ where: { tokenHash: hash } }));
    },

    fresh(id: string): Promise<ApiToken | null> {
      return prisma.apiToken.findUnique({ where: { id } });
    },

    /** Records a use, at most once a minute per token. */
    touch(id: string): void {
      const now = Date.now();
      if ((touched.get(id) ?? 0) > now - TOUCH_EVERY_MS) return;
      if (touched.size >= 10_000) touched.clear();
      touched.set(id, now);
      prisma.apiToken.update({ where: { id }, data: { lastUsedAt: new Date(now) } }).catch((err: Error) => log.warn('token last-use not recorded', { tokenId: id, err: err.message }));
    },

    async create(viewer: Viewer, raw: unknown): Promise<ApiTokenView & { token: string }> {
      return audit.audited(viewer, 'token.create', 'token', (t) => t.id, async () => {
        const input = parseInput(createTokenInput, raw);
        const owner = await subject(viewer, input.userId);
        const beyond = scopesBeyondRole(owner.role, input.scopes);
        if (beyond.length) {
          throw new ValidationFailed([{
            type: 'value_error', loc: ['scopes'], input: input.scopes,
            msg: `${beyond.join(', ')} ${beyond.length === 1 ? 'is' : 'are'} beyond the ${owner.role} role; a token may only narrow its owner's rights`,
          }]);
        }
        const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
        const row = await prisma.apiToken.create({
          data: {
            id: newId(), userId: owner.id, name: input.name, scopes: JSON.stringify(input.scopes), tokenHash: hashOf(token),
            expiresAt: new Date(Date.now() + (input.expiresInDays ?? DEFAULT_TOKEN_DAYS) * 86_400_000),
          },
        });
        log.info('api token created', { tokenId: row.id, userId: owner.id, by: viewer.id });
        return { ...view(row), token };
      });
    },

    async list(viewer: Viewer, userId?: string | null): Promise<ApiTokenView[]> {
      const owner = await subject(viewer, userId);
      const rows = await prisma.apiToken.findMany({ where: { userId: owner.id, revokedAt: null }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
      return rows.map(view);
    },

    async revoke(viewer: Viewer, id: string): Promise<void> {
      await audit.audited(viewer, 'token.revoke', 'token', id, async () => {
        authorize(viewer, 'token.manage');
        const row = isId(id) ? await prisma.apiToken.findUnique({ where: { id } }) : null;
        if (!row || row.revokedAt || (row.userId !== viewer.id && !may(viewer, 'user.manage'))) throw new NotFound('API token');
        await prisma.apiToken.update({ where: { id }, data: { revokedAt: new Date() } });
        bus.publish('user.changed', { userId: row.userId });
        log.info('api token revoked', { tokenId: id, by: viewer.id });
      });
    },
  };
}

export type ApiTokenService = ReturnType<typeof createApiTokenService>;
