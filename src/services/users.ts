// Users: provisioning, lookup and the last-active-admin guard. Admin-only
// access is enforced here as well as in the schema, so no path can skip it.
import { z } from 'zod';
import { hashPassword } from '../auth/passwords.js';
import { serialized } from '../db/serialized.js';
import { BadInput, Conflict, Forbidden, NotFound } from '../errors.js';
import type { User } from '../generated/sqlite/client.js';
import { isId, newId } from './ids.js';
import type { ServiceDeps, Viewer } from './deps.js';
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

export type UserRecord = User;

function requireAdmin(viewer: Viewer) {
  if (viewer.role !== 'admin') throw new Forbidden('Only admins can manage users and limits');
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'P2002';
}

export function createUserService({ db, log }: ServiceDeps, onLimitsChange: () => void = () => {}, onUserChange: (userId: string) => void = () => {}) {
  const prisma = db.prisma;

  async function get(viewer: Viewer, id: string): Promise<User> {
    requireAdmin(viewer);
    const user = isId(id) ? await prisma.user.findUnique({ where: { id } }) : null;
    if (!user) throw new NotFound('User');
    return user;
  }

  return {
    get,

    async getSelf(viewer: Viewer): Promise<User> {
      const user = await prisma.user.findUnique({ where: { id: viewer.id } });
      if (!user) throw new NotFound('User');
      return user;
    },

    async list(viewer: Viewer): Promise<User[]> {
      requireAdmin(viewer);
      return prisma.user.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    },

    async create(viewer: Viewer, raw: unknown): Promise<User> {
      requireAdmin(viewer);
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
    },

    async update(viewer: Viewer, id: string, raw: unknown): Promise<User> {
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
      onUserChange(user.id);
      if (input.maxConcurrentJobs !== undefined || input.isActive !== undefined) onLimitsChange();
      log.info('user updated', { userId: id, fields: Object.keys(input), by: viewer.id });
      return updated;
    },

    /** First start with no users: create the configured admin. */
    async bootstrapAdmin(emailAddr: string, pass: string): Promise<User | null> {
      if ((await prisma.user.count()) > 0) return null;
      const user = await prisma.user.create({
        data: { id: newId(), email: emailAddr.toLowerCase(), passwordHash: await hashPassword(pass), role: 'admin' satisfies Role },
      });
      log.info('bootstrap admin created', { email: user.email });
      return user;
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
