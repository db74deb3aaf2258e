import type { BatchView } from '../../services/batches.js';
import { BATCH_JOBS_BOUND, builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { present } from '../input.js';
import { JobStatsType, JobStatusEnum, JobType, SortOrderEnum, SubmitJobInput, submitted } from './job.js';

const BatchType = builder.objectRef<BatchView>('Batch').implement({
  description: 'A named group of jobs submitted together; status is derived from its jobs.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    ownerId: t.exposeID('ownerId'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    status: t.field({ type: JobStatusEnum, description: 'Derived from the jobs: PENDING (none started), RUNNING, then SUCCESS, CANCELED or FAILED', resolve: (b) => b.status }),
    jobCounts: t.field({ type: JobStatsType, resolve: (b) => b.jobCounts }),
    jobs: t.field({
      type: [JobType],
      description: 'Every job of the batch, in submission order.',
      complexity: { field: 5, multiplier: BATCH_JOBS_BOUND },
      resolve: (b, _args, ctx) => b.jobs ?? ctx.services.batches.jobsOf(b.id),
    }),
  }),
});

const CreateBatchInput = builder.inputType('CreateBatchInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    description: t.string(),
    jobs: t.field({ type: [SubmitJobInput], required: true, description: '1 to 1000 jobs; if any is invalid, nothing is created' }),
  }),
});

const ForceCompleteBatchInput = builder.inputType('ForceCompleteBatchInput', {
  fields: (t) => ({ status: t.field({ type: JobStatusEnum, required: true, description: 'SUCCESS, FAILED or CANCELED' }) }),
});

builder.queryFields((t) => ({
  batch: t.field({
    type: BatchType,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.batches.get(requireViewer(ctx), String(id)),
  }),
  batches: t.connection({
    type: BatchType,
    authScopes: { authenticated: true },
    description:
      'Your batches (admins and viewers: all), by creation time: oldest first, or newest first with order: DESC. `first`/`after` page forward, `last`/`before` backward (the rows just before the cursor, still in `order`); the two cannot be combined.',
    args: {
      name: t.arg.string({ description: 'Substring of the name, ignoring ASCII case' }),
      ownerId: t.arg.id({ description: "Only this user's batches (operators see only their own anyway)" }),
      createdAfter: t.arg({ type: 'DateTime', description: 'Created strictly after' }),
      createdBefore: t.arg({ type: 'DateTime', description: 'Created strictly before' }),
      order: t.arg({ type: SortOrderEnum, description: 'ASC (default): oldest first; DESC: newest first' }),
    },
    complexity: (args) => ({ field: 1, multiplier: Math.min(args.first ?? args.last ?? 100, 1000) / 10 }),
    resolve: (_root, args, ctx) =>
      ctx.services.batches.list(requireViewer(ctx), {
        name: args.name, ownerId: args.ownerId ? String(args.ownerId) : null, createdAfter: args.createdAfter, createdBefore: args.createdBefore,
        order: args.order, first: args.first, after: args.after, last: args.last, before: args.before,
      }),
  }),
}));

builder.mutationFields((t) => ({
  createBatch: t.field({
    type: BatchType,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CreateBatchInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.batches.create(requireViewer(ctx), { ...present(input), jobs: input.jobs.map(submitted) }),
  }),
  cancelBatch: t.field({
    type: BatchType,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.batches.cancel(requireViewer(ctx), String(id)),
  }),
  forceCompleteBatch: t.field({
    type: BatchType,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: ForceCompleteBatchInput, required: true }) },
    resolve: (_root, { id, input }, ctx) => ctx.services.batches.forceComplete(requireViewer(ctx), String(id), { status: input.status }),
  }),
  deleteBatch: t.field({
    type: 'Boolean',
    authScopes: { authenticated: true },
    description: 'Removes a batch whose jobs are all terminal, with its jobs and their output.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await ctx.services.batches.remove(requireViewer(ctx), String(id));
      return true;
    },
  }),
}));
