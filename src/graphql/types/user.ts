import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { present } from '../input.js';

export const RoleEnum = builder.enumType('Role', {
  values: { ADMIN: { value: 'admin' }, OPERATOR: { value: 'operator' }, VIEWER: { value: 'viewer' } } as const,
});

// Never exposes passwordHash: only the listed fields exist in the schema.
export const UserType = builder.prismaObject('User', {
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email'),
    role: t.field({ type: RoleEnum, resolve: (u) => u.role as 'admin' | 'operator' | 'viewer' }),
    isActive: t.exposeBoolean('isActive'),
    maxConcurrentJobs: t.exposeInt('maxConcurrentJobs', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    effectiveMaxConcurrentJobs: t.int({
      description: 'The limit in force: the per-user override, else the default',
      resolve: async (u, _args, ctx) => u.maxConcurrentJobs ?? (await ctx.services.limits.defaultLimit()),
    }),
    runningJobs: t.int({ resolve: async (u, _args, ctx) => (await ctx.services.users.usage(u.id)).running }),
    pendingJobs: t.int({ resolve: async (u, _args, ctx) => (await ctx.services.users.usage(u.id)).pending }),
  }),
});

const CreateUserInput = builder.inputType('CreateUserInput', {
  fields: (t) => ({
    email: t.string({ required: true }),
    password: t.string({ required: true }),
    role: t.field({ type: RoleEnum, required: true }),
    isActive: t.boolean(),
    maxConcurrentJobs: t.int(),
  }),
});

const UpdateMeInput = builder.inputType('UpdateMeInput', {
  fields: (t) => ({
    currentPassword: t.string({ required: true }),
    password: t.string({ required: true, description: 'The new password: 8 to 256 characters' }),
  }),
});

const UpdateUserInput = builder.inputType('UpdateUserInput', {
  description: 'Only the fields present change; maxConcurrentJobs: null clears the override.',
  fields: (t) => ({
    role: t.field({ type: RoleEnum }),
    password: t.string(),
    isActive: t.boolean(),
    maxConcurrentJobs: t.int(),
  }),
});

builder.queryFields((t) => ({
  me: t.field({
    type: UserType,
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.users.getSelf(requireViewer(ctx)),
  }),
  users: t.field({
    type: [UserType],
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.users.list(requireViewer(ctx)),
  }),
  user: t.field({
    type: UserType,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.users.get(requireViewer(ctx), String(id)),
  }),
}));

builder.mutationFields((t) => ({
  updateMe: t.field({
    type: UserType,
    authScopes: { authenticated: true },
    description: 'Changes your own password, given the current one; your other sessions end. Needs a password session.',
    args: { input: t.arg({ type: UpdateMeInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.users.updateSelf(requireViewer(ctx), input),
  }),
  createUser: t.field({
    type: UserType,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CreateUserInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.users.create(requireViewer(ctx), present(input)),
  }),
  updateUser: t.field({
    type: UserType,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateUserInput, required: true }) },
    resolve: (_root, { id, input }, ctx) => ctx.services.users.update(requireViewer(ctx), String(id), present(input)),
  }),
}));
