// Users: provisioning, lookup, self-service and the last-active-admin guard.
// A change of password, role or activity revokes the user's sessions.
import { z } from 'zod';
import { hashPassword, verifyPassword } from '../auth/passwords.js';
import { serialized } from '../db/serialized.js';
import { BadInput, Conflict, NotFound } from '../errors.js';
import type { User } from '../generated/sqlite/client.js';
import type { AuditService } from './audit.js';
import { isId, newId } from './ids.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { authorize } from './policy.js';
import type { SessionStore } from './sessions.js';
import { email, jobLimit, parseInput, password, role, type Role } from './validation.js';

export const createUserInput = z.strictObject({
  email,
  password,
  role,
  isActive: z.boolean().optional(),
  maxConcurrentJobs: jobLimit.nullable().optional(),
});
export const updateUserInput = z.strictObject({
  role: role.optional(),
  password: password.optional(),
  isActive: z.boolean().optional(),
  maxConcurrentJobs: jobLimit.nullable().optional(),
});

export const updateMeInput = z.strictObject({
  currentPassword: z.string().max(256),
  password,
});

export type UserRecord = User;

/** What the users service needs from the rest: who to tell, and how to end sessions. */
export interface UserServiceWiring {
  /** A user's limit or activity changed: the scheduler re-evaluates. */
  onLimitsChange(): void;
  sessions: SessionStore;
  audit: AuditService;
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'P2002';
}

export function createUserService({ db, log }: ServiceDeps, { onLimitsChange, sessions, audit }: UserServiceWiring) {
  const prisma = db.prisma;

  async function get(viewer: Viewer, id: string): Promise<User> {
    authorize(viewer, 'user.manage');
    const user = isId(id) ? await prisma.user.findUnique({ where: { id } }) : null;
    if (!user) throw new NotFound('User');
    return user;
  }

  return {
    get,

    async getSelf(viewer: Viewer): Promise<User> {
      authorize(viewer, 'self.read');
      const user = await prisma.user.findUnique({ where: { id: viewer.id } });
      if (!user) throw new NotFound('User');
      return user;
    },

    /** Jobs of a user pending and running now (their usage against the concurrency limit). */
    async usage(userId: string): Promise<{ pending: number; running: number }> {
      const groups = await prisma.job.groupBy({ by: ['status'], where: { ownerId: userId, status: { in: ['pending', 'running'] } }, _count: { _all: true } });
      const of = (s: string) => groups.find((g) => g.status === s)?._count._all ?? 0;
      return { pending: of('pending'), running: of('running') };
    },

    /** Changes one's own password, given the current one; every other session of the user ends. */
    async updateSelf(viewer: Viewer, raw: unknown): Promise<User> {
      return audit.audited(viewer, 'user.update_self', 'user', viewer.id, async () => {
        authorize(viewer, 'self.update');
        const input = parseInput(updateMeInput, raw);
        const user = await prisma.user.findUnique({ where: { id: viewer.id } });
        if (!user) throw new NotFound('User');
        if (!(await verifyPassword(user.passwordHash, input.currentPassword))) throw new BadInput('Current password is incorrect');
        const updated = await prisma.user.update({ where: { id: user.id }, data: { passwordHash: await hashPassword(input.password) } });
        await sessions.revokeAll(user.id, viewer.sessionId);
        log.info('password changed', { userId: user.id });
        return updated;
      });
    },

    async list(viewer: Viewer): Promise<User[]> {
      authorize(viewer, 'user.manage');
      return prisma.user.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    },

    create(viewer: Viewer, raw: unknown): Promise<User> {
      return audit.audited(viewer, 'user.create', 'user', (u) => u.id, () => createUser(viewer, raw));
    },

    update(viewer: Viewer, id: string, raw: unknown): Promise<User> {
      return audit.audited(viewer, 'user.update', 'user', id, () => updateUser(viewer, id, raw));
    },

    /**
     * At start, when no active admin exists: the configured admin is created,
     * or, if a user has that email, made an active admin (password unchanged).
     */
    async bootstrapAdmin(emailAddr: string, pass: string): Promise<User | null> {
      if ((await prisma.user.count({ where: { role: 'admin', isActive: true } })) > 0) return null;
      const address = emailAddr.toLowerCase();
      const existing = await prisma.user.findUnique({ where: { email: address } });
      if (existing) {
        const user = await prisma.user.update({ where: { id: existing.id }, data: { role: 'admin' satisfies Role, isActive: true } });
        await sessions.revokeAll(user.id);
        log.warn('no active admin: made the existing user ADMIN_EMAIL an active admin (its password is unchanged)', { email: user.email });
        return user;
      }
      const user = await prisma.user.create({
        data: { id: newId(), email: address, passwordHash: await hashPassword(pass), role: 'admin' satisfies Role },
      });
      log.info('bootstrap admin created', { email: user.email });
      return user;
    },
  };

  async function createUser(viewer: Viewer, raw: unknown): Promise<User> {
    authorize(viewer, 'user.manage');
    const input = parseInput(createUserInput, raw);
    const normalized = input.email.toLowerCase();
    if (await prisma.user.findUnique({ where: { email: normalized } })) throw new Conflict('A user with this email already exists');
    try {
      const user = await prisma.user.create({
        data: {
          id: newId(),
          email: normalized,
          passwordHash: await hashPassword(input.password),
          role: input.role,
          isActive: input.isActive ?? true,
          maxConcurrentJobs: input.maxConcurrentJobs ?? null,
        },
      });
      log.info('user created', { userId: user.id, role: user.role, by: viewer.id });
      return user;
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict('A user with this email already exists');
      throw err;
    }
  }

  async function updateUser(viewer: Viewer, id: string, raw: unknown): Promise<User> {
    const user = await get(viewer, id);
    const input = parseInput(updateUserInput, raw);
    const losesAdmin =
      user.role === 'admin' && user.isActive && ((input.role !== undefined && input.role !== 'admin') || input.isActive === false);
    const data = {
      ...(input.role !== undefined && { role: input.role }),
      ...(input.isActive !== undefined && { isActive: input.isActive }),
      ...(input.maxConcurrentJobs !== undefined && { maxConcurrentJobs: input.maxConcurrentJobs }),
      ...(input.password !== undefined && { passwordHash: await hashPassword(input.password) }),
    };
    const updated = await serialized(db, 'active-admins', async (tx) => {
      if (losesAdmin && (await tx.user.count({ where: { role: 'admin', isActive: true } })) <= 1) {
        throw new BadInput('Cannot demote or deactivate the last active admin; promote another admin first');
      }
      return tx.user.update({ where: { id: user.id }, data });
    });
    // A new password, role or deactivation ends every session at once; announcing it clears every process's caches.
    const endsSessions = input.password !== undefined || (input.role !== undefined && input.role !== user.role) || input.isActive === false;
    if (endsSessions) await sessions.revokeAll(user.id);
    else sessions.announce(user.id);
    if (input.maxConcurrentJobs !== undefined || input.isActive !== undefined) onLimitsChange();
    log.info('user updated', { userId: id, fields: Object.keys(input), by: viewer.id });
    return updated;
  }
}

export type UserService = ReturnType<typeof createUserService>;
