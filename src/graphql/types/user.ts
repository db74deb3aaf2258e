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
    authScopes: { admin: true },
    resolve: (_root, _args, ctx) => ctx.services.users.list(requireViewer(ctx)),
  }),
  user: t.field({
    type: UserType,
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.users.get(requireViewer(ctx), String(id)),
  }),
}));

builder.mutationFields((t) => ({
  createUser: t.field({
    type: UserType,
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateUserInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.users.create(requireViewer(ctx), present(input)),
  }),
  updateUser: t.field({
    type: UserType,
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateUserInput, required: true }) },
    resolve: (_root, { id, input }, ctx) => ctx.services.users.update(requireViewer(ctx), String(id), present(input)),
  }),
}));
