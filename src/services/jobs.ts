// Jobs: submission, visibility, listing, stats, logs, cancel, force-complete
// and purge. Stopping a running process is delegated to JobControl (the
// engine, local or on another worker); everything else is rows.
import { rm } from 'node:fs/promises';
import type { ResourceLimits } from '../config.js';
import type { Job } from '../generated/sqlite/client.js';
import { createJobWriter } from '../db/groupCommit.js';
import { Conflict } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { AuditService } from './audit.js';
import type { LogQuota } from './logQuota.js';
import { logsGone } from './logRemoval.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { isId, newId } from './ids.js';
import { ceilingIssues, checkCeilings, isTerminal, limitsInForce, pendingJob, prepareJob, storableText, submitJobInput, JOB_STATUSES, type JobStatus } from './jobSpec.js';
import { listFields, pageOf, pageSize, toPage, type Page } from './paging.js';
import { authorize, authorizedObject, seesAll, seesEnv, type Action } from './policy.js';
import { parseInput } from './validation.js';
import { z } from 'zod';

export interface FinalState {
  status: 'success' | 'failed' | 'canceled';
  exitCode: number | null;
  error: string | null;
}

/** Implemented by the engine (engine/control.ts). */
export interface JobControl {
  /** Something may be claimable now. */
  wake(): void;
  /**
   * Stops a running job wherever it runs (nothing when it is not running):
   * records the stop on the job, then resolves once it is terminal or after
   * a bounded wait, with the stop still pending.
   */
  stop(jobId: string, final: FinalState): Promise<void>;
}

export interface JobLogs {
  jobId: string;
  status: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

export type JobStats = Record<JobStatus, number> & { total: number };

export const forceCompleteInput = z.strictObject({
  status: z.enum(['success', 'failed', 'canceled']),
  stdout: z.string().nullish(),
  stderr: z.string().nullish(),
  exitCode: z.number().int().min(-2147483648).max(2147483647).nullish(),
});

/**
 * What a job list may be narrowed and ordered by: the one definition behind
 * REST's GET /jobs query and GraphQL's jobs(...) arguments. `name` is a
 * substring, ignoring (ASCII) case; `ownerId` narrows within what the viewer may see
 * (an operator asking for someone else's jobs gets none).
 */
export const jobListInput = z.strictObject({
  status: z.array(z.enum(JOB_STATUSES)).min(1).max(50).nullish(),
  batchId: listFields.id.nullish(),
  name: listFields.name.nullish(),
  ownerId: listFields.id.nullish(),
  createdAfter: z.date().nullish(),
  createdBefore: z.date().nullish(),
  order: listFields.order.nullish(),
  first: z.number().int().nullish(),
  after: listFields.cursor.nullish(),
  last: z.number().int().nullish(),
  before: listFields.cursor.nullish(),
});
export type JobListInput = z.input<typeof jobListInput>;

const LOG_PIECE = 64 * 1024;
/** What a job's env values read as to those who may not see them. */
export const MASKED = '***';

export function createJobService({ db, config, log }: ServiceDeps, bus: EventBus, control: JobControl, audit: AuditService, quota: LogQuota) {
  const prisma = db.prisma;
  const writer = createJobWriter(db);

  const announce = (job: Pick<Job, 'id' | 'ownerId' | 'batchId' | 'status'>) =>
    bus.publish('job.changed', { jobId: job.id, ownerId: job.ownerId, batchId: job.batchId, status: job.status }, job.id);

  /** The job, once `viewer` may take `action` on it; NotFound exactly as if it did not exist when they may not see it. */
  const allowed = (viewer: Viewer, id: string, action: Action): Promise<Job> =>
    authorizedObject(viewer, action, 'Job', async () => (isId(id) ? prisma.job.findUnique({ where: { id } }) : null));

  const visible = (viewer: Viewer, id: string) => allowed(viewer, id, 'job.read');

  /** Lists and stats: everyone's jobs for admins and viewers, one's own otherwise. */
  function scope(viewer: Viewer) {
    authorize(viewer, 'job.read');
    return seesAll(viewer) ? {} : { ownerId: viewer.id };
  }

  /**
   * Ends a job with `final`: at once when it is pending; when it runs,
   * through JobControl, which waits (bounded) for its worker to confirm the
   * processes are gone. A job still running afterwards has its stop pending
   * (stopRequest).
   */
  async function stopJob(id: string, final: FinalState): Promise<Job> {
    const { count } = await prisma.job.updateMany({ where: { id, status: 'pending' }, data: { ...final, finishedAt: new Date() } });
    if (count) {
      const after = await prisma.job.findUniqueOrThrow({ where: { id } });
      announce(after);
      control.wake();
      return after;
    }
    await control.stop(id, final);
    return prisma.job.findUniqueOrThrow({ where: { id } });
  }

  /** Replaces one stream's stored output (force-complete overrides). */
  async function replaceOutput(job: Job, stream: 'stdout' | 'stderr', text: string) {
    const bytes = Buffer.from(storableText(text), 'utf8');
    const kept = bytes.subarray(0, config.maxLogBytes).toString('utf8');
    const truncated = bytes.length > config.maxLogBytes;
    await prisma.$transaction(async (tx) => {
      const last = await tx.jobLogChunk.findFirst({ where: { jobId: job.id }, orderBy: { seq: 'desc' }, select: { seq: true } });
      let seq = last?.seq ?? 0;
      await tx.jobLogChunk.deleteMany({ where: { jobId: job.id, stream } });
      const rows = [];
      for (let i = 0; i < kept.length; i += LOG_PIECE) rows.push({ jobId: job.id, seq: ++seq, stream, data: kept.slice(i, i + LOG_PIECE), at: new Date() });
      if (rows.length) await tx.jobLogChunk.createMany({ data: rows });
      await tx.job.update({
        where: { id: job.id },
        data: stream === 'stdout' ? { stdoutBytes: Buffer.byteLength(kept), stdoutTruncated: truncated } : { stderrBytes: Buffer.byteLength(kept), stderrTruncated: truncated },
      });
    });
  }

  return {
    visible,

    submit: (viewer: Viewer, raw: unknown) => audit.audited(viewer, 'job.submit', 'job', (j: Job) => j.id, async () => {
      authorize(viewer, 'job.submit');
      const input = parseInput(submitJobInput, raw);
      checkCeilings(ceilingIssues(input.limits, config.jobLimits.ceilings));
      await quota.check(viewer);
      const prepared = prepareJob(input, config);
      const id = newId();
      const job = pendingJob(prepared, { id, ownerId: viewer.id, batchId: null, createdAt: new Date() }, config.dataDir);
      await writer.insert(job);
      log.debug('job submitted', { jobId: id, ownerId: viewer.id });
      announce(job);
      control.wake();
      return job as Job;
    }),

    get: visible,

    /** The job's environment as `viewer` may see it: values masked unless they own the job or are an admin. */
    envOf(viewer: Viewer | null, job: Pick<Job, 'env' | 'ownerId'>): Record<string, string> {
      const env = JSON.parse(job.env) as Record<string, string>;
      if (viewer && seesEnv(viewer, job)) return env;
      return Object.fromEntries(Object.keys(env).map((k) => [k, MASKED]));
    },

    /** The resource limits in force for the job (what the worker enforces). */
    limitsOf(job: Pick<Job, 'limits'>): ResourceLimits {
      return limitsInForce(job.limits, config.jobLimits);
    },

    async list(viewer: Viewer, raw: JobListInput): Promise<Page<Job>> {
      const args = parseInput(jobListInput, raw);
      const owners = scope(viewer);
      if ((args.batchId && !isId(args.batchId)) || (args.ownerId && !isId(args.ownerId))) return toPage([], pageSize(args.first ?? args.last), false);
      const filter = {
        ...(args.status && { status: { in: args.status } }),
        ...(args.batchId && { batchId: args.batchId }),
        ...(args.ownerId && { ownerId: args.ownerId }),
        // SQLite's LIKE ignores ASCII case; PostgreSQL is told to as well, so both providers agree.
        ...(args.name && { name: { contains: args.name, ...(db.provider === 'postgresql' && { mode: 'insensitive' as const }) } as { contains: string } }),
        ...((args.createdAfter || args.createdBefore) && {
          createdAt: { ...(args.createdAfter && { gt: args.createdAfter }), ...(args.createdBefore && { lt: args.createdBefore }) },
        }),
      };
      return pageOf(args, ({ where, orderBy, take }) => prisma.job.findMany({ where: { AND: [owners, filter, where] }, orderBy, take }));
    },

    async stats(viewer: Viewer, batchId?: string): Promise<JobStats> {
      const groups = await prisma.job.groupBy({ by: ['status'], where: { ...scope(viewer), ...(batchId && { batchId }) }, _count: { _all: true } });
      const stats = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as JobStats;
      stats.total = 0;
      for (const g of groups) {
        if ((JOB_STATUSES as readonly string[]).includes(g.status)) stats[g.status as JobStatus] = g._count._all;
        stats.total += g._count._all;
      }
      return stats;
    },

    async logs(viewer: Viewer, id: string): Promise<JobLogs> {
      const job = await visible(viewer, id);
      if (!isTerminal(job.status)) throw new Conflict(`Logs are not ready: the job is ${job.status}; retry once it has finished, or follow its output live with GET /jobs/${id}/logs/stream`);
      if (job.logsRemovedAt) throw logsGone({ id: job.id, logsRemovedAt: job.logsRemovedAt });
      const chunks = await prisma.jobLogChunk.findMany({ where: { jobId: id }, orderBy: { seq: 'asc' }, select: { stream: true, data: true } });
      const out: string[] = [];
      const err: string[] = [];
      for (const c of chunks) (c.stream === 'stderr' ? err : out).push(c.data);
      return {
        jobId: job.id,
        status: job.status,
        exitCode: job.exitCode,
        stdout: out.join(''),
        stderr: err.join(''),
        stdoutTruncated: job.stdoutTruncated,
        stderrTruncated: job.stderrTruncated,
      };
    },

    cancel: (viewer: Viewer, id: string) => audit.audited(viewer, 'job.cancel', 'job', id, async () => {
      const job = await allowed(viewer, id, 'job.cancel');
      if (isTerminal(job.status)) throw new Conflict(`Job is already ${job.status}`);
      return stopJob(id, { status: 'canceled', exitCode: null, error: 'canceled' });
    }),

    forceComplete: (viewer: Viewer, id: string, raw: unknown) => audit.audited(viewer, 'job.force_complete', 'job', id, async () => {
      const job = await allowed(viewer, id, 'job.forceComplete');
      const input = parseInput(forceCompleteInput, raw);
      if (isTerminal(job.status)) throw new Conflict(`Job is already ${job.status}`);
      const final: FinalState = {
        status: input.status,
        exitCode: input.exitCode ?? (input.status === 'success' ? 0 : null),
        error: input.status === 'success' ? null : `force-completed as ${input.status} by an admin`,
      };
      let after = await stopJob(id, final);
      if (input.stdout != null) await replaceOutput(after, 'stdout', input.stdout);
      if (input.stderr != null) await replaceOutput(after, 'stderr', input.stderr);
      if (input.stdout != null || input.stderr != null) after = await prisma.job.findUniqueOrThrow({ where: { id } });
      log.info('job force-completed', { jobId: id, status: input.status, by: viewer.id });
      return after;
    }),

    purge: (viewer: Viewer, id: string) => audit.audited(viewer, 'job.purge', 'job', id, async () => {
      const job = await allowed(viewer, id, 'job.purge');
      if (!isTerminal(job.status)) throw new Conflict(`Job is ${job.status}; cancel it or wait for it to finish before purging`);
      await prisma.job.delete({ where: { id } });
      if (job.ownsWorkingDir) await rm(job.workingDir, { recursive: true, force: true });
      log.info('job purged', { jobId: id, by: viewer.id });
    }),
  };
}

export type JobService = ReturnType<typeof createJobService>;
