import { RESOURCE_LIMITS, type ResourceLimits } from '../../config.js';
import type { JobLogs, JobStats } from '../../services/jobs.js';
import { builder, logStreamCost } from '../builder.js';
import { requireViewer } from '../context.js';
import { present } from '../input.js';

export const JobStatusEnum = builder.enumType('JobStatus', {
  values: {
    PENDING: { value: 'pending' },
    RUNNING: { value: 'running' },
    SUCCESS: { value: 'success' },
    FAILED: { value: 'failed' },
    CANCELED: { value: 'canceled' },
  } as const,
});

export const SortOrderEnum = builder.enumType('SortOrder', {
  values: { ASC: { value: 'asc' }, DESC: { value: 'desc' } } as const,
});

type StatusValue = 'pending' | 'running' | 'success' | 'failed' | 'canceled';

const JobLogsType = builder.objectRef<JobLogs>('JobLogs').implement({
  fields: (t) => ({
    jobId: t.exposeID('jobId'),
    status: t.field({ type: JobStatusEnum, resolve: (l) => l.status as StatusValue }),
    exitCode: t.exposeInt('exitCode', { nullable: true }),
    stdout: t.exposeString('stdout', { complexity: (_args, ctx) => logStreamCost(ctx) }),
    stderr: t.exposeString('stderr', { complexity: (_args, ctx) => logStreamCost(ctx) }),
    stdoutTruncated: t.exposeBoolean('stdoutTruncated'),
    stderrTruncated: t.exposeBoolean('stderrTruncated'),
  }),
});

const limitHelp = (key: keyof ResourceLimits) => {
  const spec = RESOURCE_LIMITS[key];
  return `${spec.min} to ${spec.max}, at most ${spec.env}_MAX when that is set (default ${spec.env}, else ${spec.def ?? 'unlimited'})`;
};

// Its fields cost nothing: Job.limits (one unit, like any field of the row)
// has computed them all, so a full page of jobs with every field still fits
// the complexity limit.
const ResourceLimitsType = builder.objectRef<ResourceLimits>('ResourceLimits').implement({
  description: 'Per-job resource limits in force; null is unlimited.',
  fields: (t) => ({
    memoryMb: t.exposeInt('memoryMb', { nullable: true, complexity: 0, description: 'Memory, in MiB' }),
    pids: t.exposeInt('pids', { nullable: true, complexity: 0, description: 'Processes and threads' }),
    cpuSeconds: t.exposeInt('cpuSeconds', { nullable: true, complexity: 0, description: 'CPU time, in seconds' }),
    openFiles: t.exposeInt('openFiles', { nullable: true, complexity: 0, description: 'Open file descriptors per process' }),
    fileSizeMb: t.exposeInt('fileSizeMb', { nullable: true, complexity: 0, description: 'Largest file a job may write, in MiB' }),
  }),
});

export const ResourceLimitsInput = builder.inputType('ResourceLimitsInput', {
  description: 'Per-job resource limits to ask for; each omitted (or null) gets the configured default. Above a configured ceiling: BAD_USER_INPUT.',
  fields: (t) => ({
    memoryMb: t.int({ description: `Memory in MiB: ${limitHelp('memoryMb')}` }),
    pids: t.int({ description: `Processes and threads: ${limitHelp('pids')}` }),
    cpuSeconds: t.int({ description: `CPU seconds: ${limitHelp('cpuSeconds')}` }),
    openFiles: t.int({ description: `Open files: ${limitHelp('openFiles')}` }),
    fileSizeMb: t.int({ description: `Largest file in MiB: ${limitHelp('fileSizeMb')}` }),
  }),
});

/**
 * The host part of a worker id (`<hostname>:<pid>:<random>`, made in
 * engine/worker.ts): what comes before the first ':'; null without an id.
 */
export function workerHost(workerId: string | null): string | null {
  if (!workerId) return null;
  const colon = workerId.indexOf(':');
  return colon === -1 ? workerId : workerId.slice(0, colon);
}

// attempt, workerId, workerHost and cancelRequested cost nothing, like the
// limits' fields: they come from the row already read, and the REST list
// (1000 jobs, every field) must stay within the complexity limit.
export const JobType = builder.prismaObject('Job', {
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    command: t.stringList({ resolve: (j) => JSON.parse(j.command) as string[] }),
    workingDir: t.exposeString('workingDir'),
    env: t.field({
      type: 'JSONObject',
      description: 'Variable name to value; values are "***" unless you own the job or are an admin',
      resolve: (j, _args, ctx) => ctx.services.jobs.envOf(ctx.viewer, j),
    }),
    payload: t.field({ type: 'JSONObject', nullable: true, resolve: (j) => (j.payload ? (JSON.parse(j.payload) as Record<string, unknown>) : null) }),
    status: t.field({ type: JobStatusEnum, resolve: (j) => j.status as StatusValue }),
    exitCode: t.exposeInt('exitCode', { nullable: true }),
    error: t.exposeString('error', { nullable: true }),
    ownerId: t.exposeID('ownerId'),
    batchId: t.exposeID('batchId', { nullable: true }),
    timeoutSeconds: t.exposeInt('timeoutSeconds', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    stdoutTruncated: t.exposeBoolean('stdoutTruncated'),
    stderrTruncated: t.exposeBoolean('stderrTruncated'),
    attempt: t.exposeInt('attempt', {
      complexity: 0,
      description:
        'How many times the job was started: 0 until a worker first claims it, then one more at each claim. A job requeued because its worker died before starting it is claimed again with the next number; each attempt starts the command at most once.',
    }),
    workerId: t.exposeString('workerId', {
      nullable: true,
      complexity: 0,
      description: 'The worker that claimed the latest attempt, as `<host>:<pid>:<random>`; null while no worker has claimed the job.',
    }),
    workerHost: t.string({
      nullable: true,
      complexity: 0,
      description: "The host of that worker: `workerId` up to its first ':'; null when `workerId` is.",
      resolve: (j) => workerHost(j.workerId),
    }),
    cancelRequested: t.boolean({
      complexity: 0,
      description:
        'True when a cancel or force-complete has been asked for while the job runs and its owning worker has not yet recorded the outcome (the job is still RUNNING and its processes are not confirmed dead).',
      resolve: (j) => j.stopRequest !== null,
    }),
    logsRemovedAt: t.expose('logsRemovedAt', {
      type: 'DateTime',
      nullable: true,
      complexity: 0,
      description: 'When retention or the log quota removed the stored output (logs then answer GONE); null while it is kept.',
    }),
    limits: t.field({
      type: ResourceLimitsType,
      description: 'The resource limits in force: what the job asked for, else the defaults, within the ceilings configured now.',
      resolve: (j, _args, ctx) => ctx.services.jobs.limitsOf(j),
    }),
    logs: t.field({
      type: JobLogsType,
      description: 'Stored output; a CONFLICT error while the job is pending or running, GONE (saying when) once retention or the log quota removed it.',
      complexity: 20,
      resolve: (j, _args, ctx) => ctx.services.jobs.logs(requireViewer(ctx), j.id),
    }),
  }),
});

export const JobStatsType = builder.objectRef<JobStats>('JobStats').implement({
  fields: (t) => ({
    pending: t.exposeInt('pending'),
    running: t.exposeInt('running'),
    success: t.exposeInt('success'),
    failed: t.exposeInt('failed'),
    canceled: t.exposeInt('canceled'),
    total: t.exposeInt('total'),
  }),
});

export const SubmitJobInput = builder.inputType('SubmitJobInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    command: t.stringList({ required: true, description: 'argv: the program, then its arguments; never run through a shell' }),
    workingDir: t.string({ description: 'An existing directory inside JOBS_ALLOWED_ROOTS; omitted, the job gets a fresh one' }),
    env: t.field({ type: 'JSONObject', description: 'Variable name to string value' }),
    payload: t.field({ type: 'JSONObject', description: 'Stored and returned verbatim' }),
    timeoutSeconds: t.int(),
    limits: t.field({ type: ResourceLimitsInput, description: 'Resource limits to ask for; omitted, the defaults' }),
  }),
});

export const ForceCompleteInput = builder.inputType('ForceCompleteInput', {
  fields: (t) => ({
    status: t.field({ type: JobStatusEnum, required: true, description: 'SUCCESS, FAILED or CANCELED' }),
    stdout: t.string(),
    stderr: t.string(),
    exitCode: t.int(),
  }),
});

/** A SubmitJobInput as the services take it: only what was sent, nested limits too. */
export const submitted = (input: typeof SubmitJobInput.$inferInput) => {
  const out: Record<string, unknown> = present(input);
  if (input.limits) out.limits = present(input.limits);
  return out;
};

builder.queryFields((t) => ({
  job: t.field({
    type: JobType,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.jobs.get(requireViewer(ctx), String(id)),
  }),
  jobs: t.connection({
    type: JobType,
    authScopes: { authenticated: true },
    description:
      'Your jobs (admins and viewers: all), by creation time: oldest first, or newest first with order: DESC. `first`/`after` page forward, `last`/`before` backward (the rows just before the cursor, still in `order`); the two cannot be combined.',
    args: {
      status: t.arg({ type: JobStatusEnum, description: 'Only this status (see also statuses)' }),
      statuses: t.arg({ type: [JobStatusEnum], description: 'Any of these statuses (with status: any of either)' }),
      batchId: t.arg.id(),
      name: t.arg.string({ description: 'Substring of the name, ignoring ASCII case' }),
      ownerId: t.arg.id({ description: "Only this user's jobs (operators see only their own anyway)" }),
      createdAfter: t.arg({ type: 'DateTime', description: 'Created strictly after' }),
      createdBefore: t.arg({ type: 'DateTime', description: 'Created strictly before' }),
      order: t.arg({ type: SortOrderEnum, description: 'ASC (default): oldest first; DESC: newest first' }),
    },
    complexity: (args) => ({ field: 1, multiplier: Math.min(args.first ?? args.last ?? 100, 1000) / 10 }),
    resolve: (_root, args, ctx) =>
      ctx.services.jobs.list(requireViewer(ctx), {
        status: args.status || args.statuses ? [...(args.status ? [args.status] : []), ...(args.statuses ?? [])] : null, batchId: args.batchId ? String(args.batchId) : null, name: args.name,
        ownerId: args.ownerId ? String(args.ownerId) : null, createdAfter: args.createdAfter, createdBefore: args.createdBefore,
        order: args.order, first: args.first, after: args.after, last: args.last, before: args.before,
      }),
  }),
  jobStats: t.field({
    type: JobStatsType,
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.jobs.stats(requireViewer(ctx)),
  }),
}));

builder.mutationFields((t) => ({
  submitJob: t.field({
    type: JobType,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: SubmitJobInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.jobs.submit(requireViewer(ctx), submitted(input)),
  }),
  cancelJob: t.field({
    type: JobType,
    authScopes: { authenticated: true },
    description:
      'Cancels a PENDING or RUNNING job and answers it: CANCELED once its processes are confirmed dead, or, when that is not confirmed within a bounded wait, still RUNNING with cancelRequested true (the owning worker carries the cancel out; watch the job).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.jobs.cancel(requireViewer(ctx), String(id)),
  }),
  forceCompleteJob: t.field({
    type: JobType,
    authScopes: { authenticated: true },
    description:
      'Gives a PENDING or RUNNING job the status asked for and answers it; a RUNNING job is stopped first and, when that is not confirmed within a bounded wait, answered still RUNNING with cancelRequested true.',
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: ForceCompleteInput, required: true }) },
    resolve: (_root, { id, input }, ctx) => ctx.services.jobs.forceComplete(requireViewer(ctx), String(id), present(input)),
  }),
  purgeJob: t.field({
    type: 'Boolean',
    authScopes: { authenticated: true },
    description: 'Removes a terminal job and all its output; true when done.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await ctx.services.jobs.purge(requireViewer(ctx), String(id));
      return true;
    },
  }),
}));
