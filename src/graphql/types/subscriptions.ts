// Subscriptions: a job as it changes, status changes of many jobs, and a
// job's output. The streams come from services/live.ts; resolvers only pass
// arguments through and hand each event on as it is.
import type { LogChunk } from '../../services/live.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { JobType } from './job.js';

/**
 * Root fields whose result depends on the event alone, never on the viewer
 * (authorization happens when subscribing): graphql/sharedEvents.ts executes
 * each of their events once for all subscribers.
 */
export const VIEWER_INDEPENDENT_SUBSCRIPTIONS = ['jobLog'] as const;

const LogStreamEnum = builder.enumType('LogStream', {
  values: {
    STDOUT: { value: 'stdout' },
    STDERR: { value: 'stderr' },
  } as const,
});

const JobLogChunkType = builder.objectRef<LogChunk>('JobLogChunk').implement({
  description: 'A piece of a job\'s output. `seq` increases by one per chunk across both streams of a job.',
  fields: (t) => ({
    seq: t.exposeInt('seq'),
    stream: t.field({ type: LogStreamEnum, resolve: (c) => c.stream }),
    data: t.exposeString('data'),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

builder.subscriptionFields((t) => ({
  jobUpdated: t.field({
    type: JobType,
    authScopes: { authenticated: true },
    description: 'The job now, then after every change; completes once a terminal state was sent.',
    args: { id: t.arg.id({ required: true }) },
    subscribe: (_root, { id }, ctx) => ctx.services.live.followJob(requireViewer(ctx), String(id)),
    resolve: (job) => job,
  }),
  jobEvents: t.field({
    type: JobType,
    authScopes: { authenticated: true },
    description: 'Every status change of your jobs (admins and viewers: all jobs), optionally only of one batch.',
    args: { batchId: t.arg.id() },
    subscribe: (_root, { batchId }, ctx) => ctx.services.live.jobEvents(requireViewer(ctx), batchId ? String(batchId) : null),
    resolve: (job) => job,
  }),
  jobLog: t.field({
    type: JobLogChunkType,
    authScopes: { authenticated: true },
    description:
      'Output chunks with seq > `after` (default 0): stored ones first, then live ones as the process writes them, in order, without gaps or duplicates. Pass the last seq seen to resume after a reconnect. Completes once the job is terminal and all its output was sent.',
    args: { id: t.arg.id({ required: true }), after: t.arg.int() },
    subscribe: (_root, { id, after }, ctx) => ctx.services.live.followLog(requireViewer(ctx), String(id), after ?? 0),
    resolve: (chunk) => chunk,
  }),
}));
