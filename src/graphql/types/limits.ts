import type { LimitsView } from '../../services/limits.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';

const LimitOverride = builder.objectRef<LimitsView['overrides'][number]>('JobLimitOverride').implement({
  fields: (t) => ({
    userId: t.exposeID('userId'),
    email: t.exposeString('email'),
    maxConcurrentJobs: t.exposeInt('maxConcurrentJobs'),
  }),
});

const Limits = builder.objectRef<LimitsView>('JobLimits').implement({
  fields: (t) => ({
    defaultMaxConcurrentJobs: t.exposeInt('defaultMaxConcurrentJobs'),
    overrides: t.field({ type: [LimitOverride], resolve: (l) => l.overrides }),
  }),
});

builder.queryField('limits', (t) =>
  t.field({
    type: Limits,
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.limits.get(requireViewer(ctx)),
  }),
);

builder.mutationFields((t) => ({
  setDefaultJobLimit: t.field({
    type: Limits,
    authScopes: { authenticated: true },
    args: { max: t.arg.int({ required: true }) },
    resolve: (_root, { max }, ctx) => ctx.services.limits.setDefault(requireViewer(ctx), max),
  }),
  setUserJobLimit: t.field({
    type: Limits,
    authScopes: { authenticated: true },
    description: 'Sets or, with max: null, clears the user\'s override.',
    args: { userId: t.arg.id({ required: true }), max: t.arg.int() },
    resolve: (_root, { userId, max }, ctx) => ctx.services.limits.setForUser(requireViewer(ctx), String(userId), max ?? null),
  }),
}));
