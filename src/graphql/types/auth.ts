import type { ApiTokenView } from '../../services/apiTokens.js';
import { SCOPES, type Scope } from '../../services/policy.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';

const AuthToken = builder
  .objectRef<{ accessToken: string; tokenType: 'bearer'; expiresIn: number }>('AuthToken')
  .implement({
    fields: (t) => ({
      accessToken: t.exposeString('accessToken'),
      tokenType: t.exposeString('tokenType'),
      expiresIn: t.exposeInt('expiresIn', { description: 'Seconds until the token expires' }),
    }),
  });

/** JOBS_READ ↔ jobs:read, and so on. */
const ApiScopeEnum = builder.enumType('ApiScope', {
  description: 'What an API token may do, within its owner\'s role: jobs:read, jobs:write (implies read), batches:read, batches:write (implies read), admin (users, limits, force-complete, audit)',
  values: Object.fromEntries(SCOPES.map((s) => [s.replace(':', '_').toUpperCase(), { value: s }])) as Record<string, { value: Scope }>,
});

const ApiTokenType = builder.objectRef<ApiTokenView>('ApiToken').implement({
  description: 'A personal access token; its secret is shown only when it is created.',
  fields: (t) => ({
    id: t.exposeID('id'),
    userId: t.exposeID('userId'),
    name: t.exposeString('name'),
    scopes: t.field({ type: [ApiScopeEnum], resolve: (a) => a.scopes }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true, description: 'Updated at most once a minute' }),
  }),
});

const CreatedApiToken = builder.objectRef<ApiTokenView & { token: string }>('CreatedApiToken').implement({
  fields: (t) => ({
    token: t.exposeString('token', { description: 'The secret: send it as `Authorization: Bearer <token>`. Shown this once only.' }),
    apiToken: t.field({ type: ApiTokenType, resolve: (a) => a }),
  }),
});

const CreateApiTokenInput = builder.inputType('CreateApiTokenInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: '1 to 100 characters' }),
    scopes: t.field({ type: [ApiScopeEnum], required: true, description: 'At most those your role allows' }),
    expiresInDays: t.int({ description: '1 to 365; default 30' }),
    userId: t.id({ description: 'Admins: make it for this user (within their role)' }),
  }),
});

builder.mutationFields((t) => ({
  login: t.field({
    type: AuthToken,
    args: { email: t.arg.string({ required: true }), password: t.arg.string({ required: true }) },
    resolve: (_root, { email, password }, ctx) => ctx.services.auth.login(email, password, ctx.clientAddress),
  }),
  logout: t.boolean({
    authScopes: { authenticated: true },
    description: 'Ends this session (its token stops working everywhere); true when done.',
    resolve: async (_root, _args, ctx) => (await ctx.services.auth.logout(requireViewer(ctx)), true),
  }),
  logoutAll: t.boolean({
    authScopes: { authenticated: true },
    description: 'Ends every session of yours; API tokens stay (revoke those one by one).',
    resolve: async (_root, _args, ctx) => (await ctx.services.auth.logoutAll(requireViewer(ctx)), true),
  }),
  revokeSessions: t.boolean({
    authScopes: { authenticated: true },
    description: 'Admins: ends every session of a user.',
    args: { userId: t.arg.id({ required: true }) },
    resolve: async (_root, { userId }, ctx) => (await ctx.services.auth.revokeSessions(requireViewer(ctx), String(userId)), true),
  }),
  createApiToken: t.field({
    type: CreatedApiToken,
    authScopes: { authenticated: true },
    description: 'Needs a password session (not an API token).',
    args: { input: t.arg({ type: CreateApiTokenInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.apiTokens.create(requireViewer(ctx), { name: input.name, scopes: input.scopes, expiresInDays: input.expiresInDays, userId: input.userId == null ? input.userId : String(input.userId) }),
  }),
  revokeApiToken: t.boolean({
    authScopes: { authenticated: true },
    description: 'Your token (admins: anyone\'s); it stops working at once. Needs a password session.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => (await ctx.services.apiTokens.revoke(requireViewer(ctx), String(id)), true),
  }),
}));

builder.queryField('apiTokens', (t) =>
  t.field({
    type: [ApiTokenType],
    authScopes: { authenticated: true },
    description: 'Your unrevoked API tokens, newest first (admins: any user\'s). Needs a password session.',
    args: { userId: t.arg.id() },
    resolve: (_root, { userId }, ctx) => ctx.services.apiTokens.list(requireViewer(ctx), userId == null ? null : String(userId)),
  }),
);
