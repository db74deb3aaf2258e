// Metrics taken at existing seams, so the code they measure stays unaware
// of them: the event bus (job status changes this process publishes), the
// service entry points (submissions, logins), the worker's named steps and
// lease renewals, and the logger (failures with a database cause).
import type { WorkerObserver } from '../engine/worker.js';
import { InvalidCredentials, RateLimited } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import { isTransientDbError } from '../db/retry.js';
import type { Logger } from '../logger.js';
import type { Services } from '../services/index.js';
import { FINAL_STATUSES, type Metrics } from './registry.js';

/**
 * The bus, counting the final statuses this process publishes. Only local
 * publications pass here (events from other processes enter the Redis
 * transport below this wrapper), so each outcome is counted once in the
 * whole deployment: by the process that recorded it.
 */
export function instrumentBus(bus: EventBus, metrics: Metrics): EventBus {
  const finished = new Map<string, { inc(): void }>(FINAL_STATUSES.map((s) => [s, metrics.jobsFinished.labels(s)]));
  return {
    publish(topic, payload, key) {
      if (topic === 'job.changed') finished.get((payload as { status: string }).status)?.inc();
      bus.publish(topic, payload, key);
    },
    subscribe: (topic, handler, key) => bus.subscribe(topic, handler, key),
    listenerCount: () => bus.listenerCount(),
    onReconnect: (handler) => bus.onReconnect(handler),
    close: () => bus.close(),
  };
}

/** Wraps the service entry points whose outcome is a metric: submissions and logins. */
export function instrumentServices(services: Services, metrics: Metrics): void {
  const { jobs, batches, auth } = services;
  const submit = jobs.submit;
  jobs.submit = async (...args) => {
    const job = await submit(...args);
    metrics.jobsSubmitted.inc();
    return job;
  };
  const create = batches.create;
  batches.create = async (...args) => {
    const batch = await create(...args);
    metrics.jobsSubmitted.inc(batch.jobs?.length ?? 0);
    return batch;
  };
  const login = auth.login;
  const throttled = metrics.rateLimited.labels('login');
  auth.login = async (...args) => {
    try {
      return await login(...args);
    } catch (err) {
      if (err instanceof InvalidCredentials) metrics.loginFailures.inc();
      else if (err instanceof RateLimited) throttled.inc();
      throw err;
    }
  };
}

export function workerObserver(metrics: Metrics): WorkerObserver {
  const stored = { stdout: metrics.logBytesStored.labels('stdout'), stderr: metrics.logBytesStored.labels('stderr') };
  const dropped = { stdout: metrics.logBytesDropped.labels('stdout'), stderr: metrics.logBytesDropped.labels('stderr') };
  const truncated = { stdout: metrics.logStreamsTruncated.labels('stdout'), stderr: metrics.logStreamsTruncated.labels('stderr') };
  const renewals = { ok: metrics.leaseRenewals.labels('ok'), failed: metrics.leaseRenewals.labels('failed'), lost: metrics.leaseRenewals.labels('lost') };
  return {
    started(job) {
      metrics.jobsStarted.inc();
      metrics.queueWait.observe(Math.max(0, Date.now() - job.createdAt.getTime()) / 1000);
    },
    spawnFailed: () => metrics.spawnFailures.inc(),
    finished(status, runMs, result) {
      metrics.runDuration.labels(status).observe(runMs / 1000);
      if (!result) return;
      stored.stdout.inc(result.stdoutBytes);
      stored.stderr.inc(result.stderrBytes);
      if (result.stdoutDropped) dropped.stdout.inc(result.stdoutDropped);
      if (result.stderrDropped) dropped.stderr.inc(result.stderrDropped);
      if (result.stdoutTruncated) truncated.stdout.inc();
      if (result.stderrTruncated) truncated.stderr.inc();
    },
    givenBack: () => metrics.jobsGivenBack.inc(),
    fenced: () => metrics.runsFenced.inc(),
    leaseRenewal: (outcome) => renewals[outcome].inc(),
  };
}

// Prisma's error classes, by name: importing them would load a provider's generated client.
const PRISMA_ERRORS = /^Prisma(ClientKnownRequest|ClientUnknownRequest|ClientInitialization|ClientRustPanic|ClientValidation)Error$|^DriverAdapterError$/;

/** True when `err` (or its cause) comes from the database driver or Prisma. */
function isDatabaseError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (PRISMA_ERRORS.test((e as Error).constructor?.name ?? '') || PRISMA_ERRORS.test((e as Error).name ?? '')) return true;
  }
  return isTransientDbError(err);
}

/**
 * The logger, counting logged failures whose `err` has a database cause.
 * Every place that gives up on a database call logs it once (a 500, a failed
 * claim pass, a lease renewal, a run not recorded); retried blips that then
 * succeed are not failures and are not counted.
 */
export function observeLog(log: Logger, metrics: Metrics): Logger {
  const check = (fields?: Record<string, unknown>) => {
    if (fields?.err !== undefined && isDatabaseError(fields.err)) metrics.databaseErrors.inc();
  };
  return {
    debug: (m, f) => log.debug(m, f),
    info: (m, f) => log.info(m, f),
    warn: (m, f) => {
      check(f);
      log.warn(m, f);
    },
    error: (m, f) => {
      check(f);
      log.error(m, f);
    },
    scope: (fields) => observeLog(log.scope(fields), metrics),
  };
}
