// Batches: up to 1000 jobs created in one transaction (all or nothing), a
// status derived from their jobs, and cancel/force-complete/delete over all
// of them. Jobs of a batch are ordinary jobs: same limits, same fairness.
import { rm } from 'node:fs/promises';
import { z } from 'zod';
import type { Batch, Job } from '../generated/sqlite/client.js';
import { insertJobs } from '../db/insertJobs.js';
import { Conflict } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { AuditService } from './audit.js';
import type { LogQuota } from './logQuota.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { isId, newId } from './ids.js';
import type { FinalState, JobControl, JobStats } from './jobs.js';
import { ceilingIssues, checkCeilings, JOB_STATUSES, pendingJob, prepareJob, submitJobInput, type JobStatus } from './jobSpec.js';
import { listFields, ORDER, pageOf, pageSize, toPage, type Page } from './paging.js';
import { authorize, authorizedObject, seesAll, type Action } from './policy.js';
import { parseInput, text } from './validation.js';

export const MAX_BATCH_JOBS = 1000;

/**
 * What a batch list may be narrowed and ordered by: the one definition behind
 * REST's GET /job-batches query and GraphQL's batches(...) arguments (the
 * same meanings as for jobs; no status filter: a batch's status is derived
 * from its jobs' counts).
 */
export const batchListInput = z.strictObject({
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
export type BatchListInput = z.input<typeof batchListInput>;

/** A batch's job list, whatever the job schema (REST's snake_case one or this camelCase one). */
export const batchJobs = <J extends z.ZodType>(job: J) => z.array(job).min(1).max(MAX_BATCH_JOBS);

export const createBatchInput = z.strictObject({
  name: text().min(1).max(200),
  description: text().max(2000).nullish(),
  jobs: batchJobs(submitJobInput),
});

export const forceCompleteBatchInput = z.strictObject({ status: z.enum(['success', 'failed', 'canceled']) });

export type BatchStatus = 'pending' | 'running' | 'success' | 'failed' | 'canceled';

export interface BatchView extends Batch {
  jobCounts: JobStats;
  status: BatchStatus;
  /** Set when the view is a snapshot that includes its jobs (the create response). */
  jobs?: Job[];
}

export function batchStatus(c: JobStats): BatchStatus {
  const ended = c.success + c.failed + c.canceled;
  if (c.running > 0 || (c.pending > 0 && ended > 0)) return 'running';
  if (c.pending > 0 || c.total === 0) return 'pending';
  if (c.failed > 0) return 'failed';
  if (c.canceled > 0) return 'canceled';
  return 'success';
}

const emptyCounts = (): JobStats => ({ ...(Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>), total: 0 });

export function createBatchService({ db, config, log }: ServiceDeps, bus: EventBus, control: JobControl, audit: AuditService, quota: LogQuota) {
  const prisma = db.prisma;

  async function countsFor(batchIds: string[]): Promise<Map<string, JobStats>> {
    const map = new Map(batchIds.map((id) => [id, emptyCounts()]));
    if (batchIds.length === 0) return map;
    const groups = await prisma.job.groupBy({ by: ['batchId', 'status'], where: { batchId: { in: batchIds } }, _count: { _all: true } });
    for (const g of groups) {
      const c = map.get(g.batchId!)!;
      c[g.status as JobStatus] = g._count._all;
      c.total += g._count._all;
    }
    return map;
  }

  async function withCounts(batches: Batch[]): Promise<BatchView[]> {
    const counts = await countsFor(batches.map((b) => b.id));
    return batches.map((b) => {
      const jobCounts = counts.get(b.id)!;
      return { ...b, jobCounts, status: batchStatus(jobCounts) };
    });
  }

  /** The batch, once `viewer` may take `action` on it; NotFound exactly as if it did not exist when they may not see it. */
  const allowed = (viewer: Viewer, id: string, action: Action): Promise<Batch> =>
    authorizedObject(viewer, action, 'Batch', async () => (isId(id) ? prisma.batch.findUnique({ where: { id } }) : null));

  const visible = (viewer: Viewer, id: string) => allowed(viewer, id, 'batch.read');

  /** Stops every non-terminal job of the batch with `final`; pending ones at once. */
  async function finishAll(batch: Batch, final: FinalState) {
    const pending = await prisma.job.findMany({ where: { batchId: batch.id, status: 'pending' }, select: { id: true } });
    await prisma.job.updateMany({ where: { batchId: batch.id, status: 'pending' }, data: { ...final, finishedAt: new Date() } });
    for (const j of pending) bus.publish('job.changed', { jobId: j.id, ownerId: batch.ownerId, batchId: batch.id, status: final.status }, j.id);
    const running = await prisma.job.findMany({ where: { batchId: batch.id, status: 'running' }, select: { id: true } });
    await Promise.all(running.map((j) => control.stop(j.id, final)));
    // Jobs claimed between the two reads are running now, and one given back unstarted is pending again: one more
    // sweep. A running job whose stop was asked for above is not waited for twice.
    const asked = running.map((j) => j.id);
    const late = await prisma.job.findMany({
      where: { batchId: batch.id, OR: [{ status: 'pending' }, { status: 'running', id: { notIn: asked } }] },
      select: { id: true },
    });
    await Promise.all(
      late.map(async (j) => {
        const { count } = await prisma.job.updateMany({ where: { id: j.id, status: 'pending' }, data: { ...final, finishedAt: new Date() } });
        if (count === 0) await control.stop(j.id, final);
        else bus.publish('job.changed', { jobId: j.id, ownerId: batch.ownerId, batchId: batch.id, status: final.status }, j.id);
      }),
    );
    control.wake();
  }

  return {
    visible,

    async jobsOf(batchId: string): Promise<Job[]> {
      return prisma.job.findMany({ where: { batchId }, orderBy: ORDER });
    },

    create: (viewer: Viewer, raw: unknown) => audit.audited(viewer, 'batch.create', 'batch', (b: BatchView) => b.id, async () => {
      authorize(viewer, 'batch.create');
      const input = parseInput(createBatchInput, raw);
      checkCeilings(input.jobs.flatMap((j, i) => ceilingIssues(j.limits, config.jobLimits.ceilings, 'key', ['jobs', i])));
      await quota.check(viewer);
      const prepared = input.jobs.map((j, i) => prepareJob(j, config, `jobs[${i}]: `));
      const batchId = newId();
      const createdAt = new Date();
      // One timestamp for all; UUIDv7 ids increase within it, so (created_at, id) keeps submission order.
      const rows = prepared.map((p) => pendingJob(p, { id: newId(), ownerId: viewer.id, batchId, createdAt }, config.dataDir));
      const batch = await prisma.$transaction(async (tx) => {
        const b = await tx.batch.create({ data: { id: batchId, name: input.name, description: input.description ?? null, ownerId: viewer.id, createdAt } });
        await insertJobs(db.provider, tx, rows);
        return b;
      });
      log.info('batch created', { batchId, jobs: rows.length, ownerId: viewer.id });
      for (const r of rows) bus.publish('job.changed', { jobId: r.id, ownerId: viewer.id, batchId, status: 'pending' }, r.id);
      control.wake();
      const jobCounts = { ...emptyCounts(), pending: rows.length, total: rows.length };
      // The jobs as created: a worker may claim them before the response is written, and the response must agree with its own counts.
      return { ...batch, jobCounts, status: batchStatus(jobCounts), jobs: rows } as BatchView;
    }),

    async get(viewer: Viewer, id: string): Promise<BatchView> {
      return (await withCounts([await visible(viewer, id)]))[0]!;
    },

    async list(viewer: Viewer, raw: BatchListInput): Promise<Page<BatchView>> {
      authorize(viewer, 'batch.read');
      const args = parseInput(batchListInput, raw);
      if (args.ownerId && !isId(args.ownerId)) return toPage([], pageSize(args.first ?? args.last), false);
      const owners = seesAll(viewer) ? {} : { ownerId: viewer.id };
      const filter = {
        ...(args.ownerId && { ownerId: args.ownerId }),
        // SQLite's LIKE ignores ASCII case; PostgreSQL is told to as well, so both providers agree.
        ...(args.name && { name: { contains: args.name, ...(db.provider === 'postgresql' && { mode: 'insensitive' as const }) } as { contains: string } }),
        ...((args.createdAfter || args.createdBefore) && {
          createdAt: { ...(args.createdAfter && { gt: args.createdAfter }), ...(args.createdBefore && { lt: args.createdBefore }) },
        }),
      };
      const page = await pageOf(args, ({ where, orderBy, take }) => prisma.batch.findMany({ where: { AND: [owners, filter, where] }, orderBy, take }));
      const views = await withCounts(page.edges.map((e) => e.node));
      return { ...page, edges: page.edges.map((e, i) => ({ cursor: e.cursor, node: views[i]! })) };
    },

    cancel: (viewer: Viewer, id: string) => audit.audited(viewer, 'batch.cancel', 'batch', id, async () => {
      const batch = await allowed(viewer, id, 'batch.cancel');
      await finishAll(batch, { status: 'canceled', exitCode: null, error: 'canceled' });
      return (await withCounts([batch]))[0]!;
    }),

    forceComplete: (viewer: Viewer, id: string, raw: unknown) => audit.audited(viewer, 'batch.force_complete', 'batch', id, async () => {
      const batch = await allowed(viewer, id, 'batch.forceComplete');
      const { status } = parseInput(forceCompleteBatchInput, raw);
      await finishAll(batch, { status, exitCode: status === 'success' ? 0 : null, error: status === 'success' ? null : `force-completed as ${status} by an admin` });
      log.info('batch force-completed', { batchId: id, status, by: viewer.id });
      return (await withCounts([batch]))[0]!;
    }),

    remove: (viewer: Viewer, id: string) => audit.audited(viewer, 'batch.delete', 'batch', id, async () => {
      const batch = await allowed(viewer, id, 'batch.delete');
      const live = await prisma.job.count({ where: { batchId: id, status: { in: ['pending', 'running'] } } });
      if (live > 0) throw new Conflict(`Batch has ${live} job(s) not finished; cancel it or wait before deleting`);
      const dirs = await prisma.job.findMany({ where: { batchId: id, ownsWorkingDir: true }, select: { workingDir: true } });
      await prisma.batch.delete({ where: { id: batch.id } });
      await Promise.all(dirs.map((d) => rm(d.workingDir, { recursive: true, force: true })));
      log.info('batch deleted', { batchId: id, by: viewer.id });
    }),
  };
}

export type BatchService = ReturnType<typeof createBatchService>;
