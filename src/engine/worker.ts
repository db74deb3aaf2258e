// A worker: claims eligible jobs when woken (submit, finish, limit change,
// and a slow timer as a safety net), runs them through a p-queue sized by
// WORKER_CONCURRENCY, records their outcome, and stops them on request.
//
// It holds a lease (liveness.ts) renewed every heartbeat; each claim is a
// new attempt, and every write about a run names it (runRecords.ts,
// logSink.ts). A run whose attempt is no longer current is "fenced": it is
// killed and nothing more is written about it. After each renewal the worker
// compares what it runs with what the database says it owns: stops asked
// for through the database are carried out (the bus may be down), runs the
// database no longer gives it are fenced, claims it never heard back about
// are given back.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import PQueue from 'p-queue';
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import { isTransientDbError, retryTransient } from '../db/retry.js';
import type { EventBus } from '../events/bus.js';
import type { Job } from '../generated/sqlite/client.js';
import type { Logger } from '../logger.js';
import type { FinalState } from '../services/jobs.js';
import { allowedRootOf, limitsInForce } from '../services/jobSpec.js';
import { newId } from '../services/ids.js';
import { claimJobs, Fairness } from './claim.js';
import { createLiveness } from './liveness.js';
import { createLogSink, Fenced } from './logSink.js';
import { createRunRecords, type RunRef } from './runRecords.js';
import { staleCgroups, sweepRunDirs } from './leftovers.js';
import { isolationFor } from './isolation.js';
import type { Launcher } from './launcher.js';
import type { Spawner } from './spawnerClient.js';
import { startRun, type OutputSink, type RunHandle, type RunResult } from './runner.js';

const SAFETY_POLL_MS = 1000;
const RUN_DIR_SWEEP_MS = 60 * 60 * 1000;
const SHUTDOWN_KILLED = 'killed at worker shutdown';
const LEASE_LAPSED = 'worker lost: its lease lapsed (the database was unreachable)';
// The runner's error for a start the spawner helper refused because its copy of the lease had lapsed.
const LEASE_REFUSED = 'spawn ELEASE';

interface Active {
  job: Job;
  run: RunRef;
  handle: RunHandle | null;
  /** A stop asked for: recorded instead of the process's own outcome. */
  final: FinalState | null;
  /** The attempt is no longer ours: kill it and record nothing. */
  fenced: boolean;
  /** Stopped before it started: give the job back rather than record an outcome. */
  release: boolean;
  /** Its outcome (or its release) is being written: the database may already show it as not ours. */
  settling: boolean;
  launchedAt: number;
  finished: Promise<void>;
}

/** Told of each named step of a run and of each lease renewal (metrics); must not throw. */
export interface WorkerObserver {
  started(job: Job): void;
  spawnFailed(job: Job): void;
  /** An outcome recorded by this worker; `result` is absent when the process never ran (a stop or refusal before it). */
  finished(status: FinalState['status'], runMs: number, result: RunResult | null): void;
  givenBack(): void;
  fenced(): void;
  leaseRenewal(outcome: 'ok' | 'failed' | 'lost'): void;
}

interface WorkerOptions {
  defaultLimit: () => Promise<number>;
  launcher?: Launcher;
  /** Passes the lease on to the spawner helper, which kills the jobs itself when renewals stop. */
  renewHelperLease?: (ms: number) => void;
  /** The host's job cgroups, for the sweep of those no job runs in. */
  cgroups?: Pick<Spawner, 'jobCgroups' | 'forgetCgroups'>;
  observer?: WorkerObserver;
}

export interface Worker {
  readonly id: string;
  start(): Promise<void>;
  wake(): void;
  /** Stops a job running here; false when it does not run here. */
  stopLocal(jobId: string, final: FinalState): Promise<boolean>;
  activeCount(): number;
  /** Stop claiming, let running jobs finish for the grace period, then kill and record them. */
  shutdown(graceMs: number): Promise<void>;
  /** During shutdown: kill every job now (SIGKILL) and record it, instead of waiting out the grace. */
  abort(): void;
}

/** Worker ids name their host first: `<hostname>:<pid>:<random>`. */
const newWorkerId = () => `${hostname()}:${process.pid}:${newId().slice(-12)}`;

export function createWorker(db: Database, config: Config, bus: EventBus, log: Logger, options: WorkerOptions): Worker {
  const observer = options.observer;
  let id = newWorkerId();
  let wlog = log.scope({ workerId: id });
  const leaseMs = 3 * config.heartbeatMs;
  const liveness = createLiveness(db, bus, log, { leaseMs, marginMs: Math.max(1000, config.heartbeatMs) });
  // Until the lease is first taken (register), a write has nothing to wait for.
  let leaseUntil = Infinity;
  let reaped = false;
  const leaseHeld = () => !reaped && performance.now() < leaseUntil;
  // Writes are retried through database outages until this worker learns it was reaped.
  const records = createRunRecords(db, () => reaped || aborted);
  const queue = new PQueue({ concurrency: config.workerConcurrency });
  const active = new Map<string, Active>();
  const fairness = new Fairness();
  let accepting = false;
  let aborted = false;
  let passRunning: Promise<void> | null = null;
  let passAgain = false;
  let passes = 0;
  const timers: NodeJS.Timeout[] = [];
  let leaseTimer: NodeJS.Timeout | undefined;
  const unsubscribe: (() => void)[] = [];
  let abortNow: () => void = () => {};
  const abortRequested = new Promise<void>((r) => (abortNow = r));

  function announce(job: Pick<Job, 'id' | 'ownerId' | 'batchId'>, status: string) {
    bus.publish('job.changed', { jobId: job.id, ownerId: job.ownerId, batchId: job.batchId, status }, job.id);
  }

  // Every start of a job gets a cgroup of its own, named by the job and the attempt.
  const isolationOf = (job: Job) =>
    isolationFor(job, config, limitsInForce(job.limits, config.jobLimits), `${job.attempt}-${process.pid.toString(36)}`, (dir) =>
      allowedRootOf(dir, config.jobsAllowedRoots),
    );

  // ---- one run ----------------------------------------------------------

  function fence(entry: Active, why: string) {
    if (entry.fenced) return;
    entry.fenced = true;
    observer?.fenced();
    wlog.warn('run fenced: its attempt is no longer this worker\'s; killing it, recording nothing', { jobId: entry.job.id, attempt: entry.run.attempt, why });
    entry.handle?.cancel('fenced');
  }

  /** Output goes to storage under the run's attempt; a refused batch fences the run. */
  function sinkFor(entry: Active): OutputSink {
    const sink = createLogSink(db, bus, entry.run, () => reaped || aborted || entry.fenced);
    return {
      write: (chunks) =>
        sink.write(chunks).catch((err: unknown) => {
          if (err instanceof Fenced) fence(entry, 'log batch refused');
          throw err;
        }),
    };
  }

  async function record(entry: Active, final: FinalState, result: RunResult | null = null) {
    if (entry.fenced) return;
    entry.settling = true;
    const output = result ? { stdoutBytes: result.stdoutBytes, stderrBytes: result.stderrBytes, stdoutTruncated: result.stdoutTruncated, stderrTruncated: result.stderrTruncated } : undefined;
    if (await records.finished(entry.run, final, output)) {
      const durationMs = performance.now() - entry.launchedAt;
      observer?.finished(final.status, durationMs, result);
      wlog.info('job finished', { jobId: entry.job.id, ownerId: entry.job.ownerId, attempt: entry.run.attempt, status: final.status, exitCode: final.exitCode, durationMs: Math.round(durationMs) });
      announce(entry.job, final.status);
    } else fence(entry, 'outcome refused');
  }

  async function giveBack(entry: Active, why: string) {
    if (entry.fenced) return;
    entry.settling = true;
    if (await records.release(entry.run)) {
      observer?.givenBack();
      wlog.info('job given back unstarted', { jobId: entry.job.id, attempt: entry.run.attempt, why });
      announce(entry.job, 'pending');
    }
  }

  async function execute(entry: Active) {
    const { job } = entry;
    // A worker that cannot renew its lease starts nothing: the job may already be someone else's.
    if (!leaseHeld() || entry.release) return giveBack(entry, 'not started: lease lapsed or shutting down');
    const isolation = config.jobIsolation === 'on' ? isolationOf(job) : undefined;
    if (isolation === null) {
      return record(entry, { status: 'failed', exitCode: null, error: `working_dir ${job.workingDir} is no longer inside the allowed roots (JOBS_ALLOWED_ROOTS)` });
    }
    const handle = startRun(
      {
        argv: JSON.parse(job.command) as string[],
        cwd: job.workingDir,
        makeCwd: job.ownsWorkingDir,
        env: JSON.parse(job.env) as Record<string, string>,
        timeoutSeconds: job.timeoutSeconds,
        maxLogBytes: config.maxLogBytes,
        killGraceMs: config.killGraceMs,
        launcher: options.launcher,
        isolation,
      },
      sinkFor(entry),
    );
    entry.handle = handle;
    // A stop requested between claim and spawn.
    if (entry.final) handle.cancel(entry.final.error ?? 'canceled');
    const pid = await handle.started;
    if (pid !== undefined) observer?.started(job);
    if (pid !== undefined) wlog.info('job started', { jobId: job.id, ownerId: job.ownerId, attempt: entry.run.attempt, pid });
    if (pid !== undefined && !(await records.started(entry.run, pid))) fence(entry, 'pid refused');
    const result = await handle.done;
    // Refused or abandoned before it started (a lapsed lease, here or in the helper; shutdown): it never ran, so it goes back.
    if (pid === undefined && (entry.release || !leaseHeld() || result.error === LEASE_REFUSED)) return giveBack(entry, result.error ?? 'not started');
    if (pid === undefined && !entry.final) observer?.spawnFailed(job);
    const final = entry.final ?? { status: result.outcome, exitCode: result.exitCode, error: result.error };
    await record(entry, final, result);
  }

  async function run(entry: Active) {
    try {
      await execute(entry);
    } catch (err) {
      // Writes retry transient failures until this worker was reaped: then the job is not ours to record.
      if (isTransientDbError(err) || reaped) {
        wlog.warn('run not recorded: the database could not be reached before this worker lost its lease', { jobId: entry.job.id, err });
        return;
      }
      wlog.error('job run failed', { jobId: entry.job.id, err });
      await record(entry, { status: 'failed', exitCode: null, error: `internal error: ${(err as Error).message}` }).catch(() => {});
    }
  }

  function launch(job: Job) {
    let resolveFinished!: () => void;
    const entry: Active = {
      job,
      run: { id: job.id, attempt: job.attempt },
      handle: null,
      final: null,
      fenced: false,
      release: !accepting,
      settling: false,
      launchedAt: performance.now(),
      finished: new Promise((r) => (resolveFinished = r)),
    };
    active.set(job.id, entry);
    announce(job, 'running');
    void queue.add(async () => {
      try {
        await run(entry);
      } finally {
        active.delete(job.id);
        resolveFinished();
        wake();
      }
    });
  }

  // ---- claiming ---------------------------------------------------------

  // A database outage fails every pass (the safety timer runs one a second): said when it starts and when it ends.
  let claimsDown = false;

  async function pass() {
    passes++;
    try {
      do {
        passAgain = false;
        const slots = config.workerConcurrency - active.size;
        if (!accepting || slots <= 0 || !leaseHeld()) break;
        const jobs = await claimJobs(db, { workerId: id, slots, defaultLimit: await options.defaultLimit(), fairness });
        if (claimsDown) wlog.info('claiming again: the database answers');
        claimsDown = false;
        if (jobs.length === 0) break;
        for (const job of jobs) launch(job);
        // A full take may mean more is waiting for slots that free later.
      } while (passAgain);
    } catch (err) {
      if (!isTransientDbError(err)) wlog.error('dispatch pass failed', { err });
      else if (!claimsDown) wlog.warn('cannot claim jobs: the database is not answering; trying every second', { err });
      claimsDown ||= isTransientDbError(err);
    }
  }

  function wake() {
    if (!accepting) return;
    if (passRunning) {
      passAgain = true;
      return;
    }
    // Cleared by the caller, not inside pass(): pass() may settle before it returns.
    passRunning = pass().finally(() => {
      passRunning = null;
      if (passAgain) wake();
    });
  }

  async function stopLocal(jobId: string, final: FinalState, graceMs?: number): Promise<boolean> {
    const entry = active.get(jobId);
    if (!entry) return false;
    entry.final ??= final;
    entry.handle?.cancel(final.error ?? 'canceled', graceMs);
    await entry.finished;
    return true;
  }

  // ---- the lease --------------------------------------------------------

  /** Reaped while alive (paused or partitioned too long): drop the old runs unrecorded and join again under a new id. */
  async function rejoin() {
    wlog.warn('this worker was declared lost and its jobs settled elsewhere; killing what it still runs and joining again under a new id', { running: active.size });
    for (const entry of active.values()) fence(entry, 'worker reaped');
    await Promise.all([...active.values()].map((e) => e.finished));
    id = newWorkerId();
    wlog = log.scope({ workerId: id });
    await liveness.register(id);
    leaseUntil = performance.now() + leaseMs;
    reaped = false;
    wake();
  }

  /** Carries out stops asked for through the database, fences what it no longer owns, gives back claims it never launched. */
  async function reconcile(askedAt: number) {
    await passRunning;
    const passesBefore = passes;
    const owned = new Map((await liveness.owned(id)).map((r) => [r.id, r]));
    for (const [jobId, entry] of active) {
      const row = owned.get(jobId);
      if (row?.stopRequest && !entry.final) void stopLocal(jobId, row.stopRequest);
      else if (!row && entry.launchedAt < askedAt && !entry.settling) fence(entry, 'no longer assigned here');
    }
    // A claim made meanwhile could show in `owned` before its jobs are launched: strays only from a quiet moment.
    if (passes !== passesBefore || passRunning) return;
    // Claims whose answer was lost (the connection dropped at commit): never started here.
    for (const row of owned.values()) {
      if (active.has(row.id)) continue;
      const settle = async () =>
        row.stopRequest
          ? records.finished(row, row.stopRequest)
          : (await records.release(row)) || records.finished(row, { status: 'failed', exitCode: null, error: 'worker lost: this worker lost track of the run' });
      await settle().catch((err) => wlog.warn('could not settle a run this worker does not hold', { jobId: row.id, err }));
    }
  }

  async function renewLease() {
    const sentAt = performance.now();
    const renewed = await liveness.renew(id).catch((err: unknown) => {
      observer?.leaseRenewal('failed');
      throw err;
    });
    observer?.leaseRenewal(renewed ? 'ok' : 'lost');
    if (!renewed) {
      reaped = true;
      return rejoin();
    }
    leaseUntil = sentAt + leaseMs;
    options.renewHelperLease?.(leaseMs - (performance.now() - sentAt));
    await reconcile(sentAt);
    await liveness.reap(id);
  }

  /** Without a helper to enforce it, the worker stops its own runs once its lease has lapsed. */
  function selfFenceIfLapsed() {
    if (leaseHeld() || reaped) return;
    for (const [jobId, entry] of active) if (!entry.final) void stopLocal(jobId, { status: 'failed', exitCode: null, error: LEASE_LAPSED }, 0);
  }

  // A tick never waits for the previous renewal: a database that stops answering must not stop the self-fencing check.
  let renewing = false;
  function leaseTick() {
    selfFenceIfLapsed();
    if (renewing) return;
    renewing = true;
    renewLease()
      .catch((err) => wlog.warn('lease renewal failed', { err, leftMs: Math.round(leaseUntil - performance.now()) }))
      .finally(() => (renewing = false));
  }

  // ---- start and stop ---------------------------------------------------

  /** Run directories of deleted jobs and cgroups of jobs no longer running, on this host (see leftovers.ts). */
  async function sweepLeftovers() {
    await sweepRunDirs(db, join(config.dataDir, 'runs'), wlog);
    if (!options.cgroups) return;
    const stale = await staleCgroups(db, options.cgroups.jobCgroups());
    if (!stale.length) return;
    options.cgroups.forgetCgroups(stale);
    wlog.info('cgroups of jobs no longer running removed', { cgroups: stale.length });
  }

  async function killAll(final: FinalState, graceMs?: number) {
    for (const entry of active.values()) if (!entry.handle) entry.release = true;
    await Promise.all([...active.keys()].map((jobId) => stopLocal(jobId, final, graceMs)));
  }

  return {
    get id() {
      return id;
    },
    wake,
    stopLocal: (jobId, final) => stopLocal(jobId, final),
    activeCount: () => active.size,

    async start() {
      await retryTransient(() => liveness.reconcileOnStart(id));
      await retryTransient(() => liveness.register(id));
      leaseUntil = performance.now() + leaseMs;
      options.renewHelperLease?.(leaseMs);
      accepting = true;
      unsubscribe.push(bus.subscribe('dispatch.wake', () => wake()));
      unsubscribe.push(
        bus.subscribe('job.control', (msg) => {
          if (active.has(msg.jobId) && msg.final) void stopLocal(msg.jobId, msg.final);
        }),
      );
      timers.push(setInterval(() => wake(), SAFETY_POLL_MS).unref());
      const sweep = () => void sweepLeftovers().catch((err) => wlog.warn('sweep of leftovers failed', { err }));
      sweep();
      timers.push(setInterval(sweep, RUN_DIR_SWEEP_MS).unref());
      leaseTimer = setInterval(leaseTick, config.heartbeatMs).unref();
      wlog.info('worker started', { concurrency: config.workerConcurrency, leaseSeconds: leaseMs / 1000 });
      wake();
    },

    abort() {
      aborted = true;
      abortNow();
    },

    async shutdown(graceMs) {
      accepting = false;
      for (const t of timers) clearInterval(t);
      for (const u of unsubscribe) u();
      await passRunning;
      // Claimed but not started yet: back to the queue for another worker.
      for (const entry of active.values()) if (!entry.handle) entry.release = true;
      if (active.size) {
        wlog.info('waiting for running jobs', { running: active.size, graceMs });
        const all = Promise.all([...active.values()].map((a) => a.finished));
        const grace = new Promise<'grace'>((r) => setTimeout(() => r('grace'), graceMs).unref());
        const outcome = await Promise.race([all.then(() => 'done' as const), grace, abortRequested.then(() => 'abort' as const)]);
        if (outcome !== 'done') {
          const final: FinalState = { status: 'failed', exitCode: null, error: SHUTDOWN_KILLED };
          // Killed at once when a second signal asked not to wait; the kill grace otherwise.
          const killing = killAll(final, outcome === 'abort' ? 0 : undefined);
          await Promise.race([killing, abortRequested.then(() => killAll(final, 0))]);
        }
      }
      await queue.onIdle();
      clearInterval(leaseTimer);
      await liveness.unregister(id).catch(() => {});
    },
  };
}
