// A worker: claims eligible jobs when woken (submit, finish, limit change,
// and a slow timer as a safety net), runs them through a p-queue sized by
// WORKER_CONCURRENCY, records their outcome, and stops them on request.
import { hostname } from 'node:os';
import PQueue from 'p-queue';
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { EventBus } from '../events/bus.js';
import type { Job } from '../generated/sqlite/client.js';
import type { Logger } from '../logger.js';
import type { FinalState } from '../services/jobs.js';
import { allowedRootOf, limitsInForce } from '../services/jobSpec.js';
import { newId } from '../services/ids.js';
import { claimJobs, Fairness } from './claim.js';
import { createLiveness } from './liveness.js';
import { createLogSink } from './logSink.js';
import { createRunRecords } from './runRecords.js';
import { isolationFor } from './isolation.js';
import type { Launcher } from './launcher.js';
import { startRun, type RunHandle } from './runner.js';

const SAFETY_POLL_MS = 1000;

interface Active {
  handle: RunHandle | null;
  final: FinalState | null;
  finished: Promise<void>;
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
}

export function createWorker(db: Database, config: Config, bus: EventBus, log: Logger, defaultLimit: () => Promise<number>, launcher?: Launcher): Worker {
  const id = `${hostname()}:${process.pid}:${newId().slice(-12)}`;
  const wlog = log.scope({ workerId: id });
  const records = createRunRecords(db);
  const queue = new PQueue({ concurrency: config.workerConcurrency });
  const active = new Map<string, Active>();
  const fairness = new Fairness();
  const liveness = createLiveness(db, bus, wlog, id, config.heartbeatMs);
  let accepting = false;
  let passRunning: Promise<void> | null = null;
  let passAgain = false;
  const timers: NodeJS.Timeout[] = [];
  const unsubscribe: (() => void)[] = [];

  function announce(job: Pick<Job, 'id' | 'ownerId' | 'batchId'>, status: string) {
    bus.publish('job.changed', { jobId: job.id, ownerId: job.ownerId, batchId: job.batchId, status }, job.id);
  }

  // Every start of a job gets a cgroup of its own, named by the job and the attempt (this process, its count of starts).
  let starts = 0;
  const isolationOf = (job: Job) =>
    isolationFor(job, config, limitsInForce(job.limits, config.jobLimits), `${process.pid.toString(36)}-${(starts++).toString(36)}`, (dir) =>
      allowedRootOf(dir, config.jobsAllowedRoots),
    );

  async function run(job: Job, entry: Active) {
    const jlog = wlog.scope({ jobId: job.id });
    try {
      const isolation = config.jobIsolation === 'on' ? isolationOf(job) : undefined;
      if (isolation === null) {
        const final: FinalState = { status: 'failed', exitCode: null, error: `working_dir ${job.workingDir} is no longer inside the allowed roots (JOBS_ALLOWED_ROOTS)` };
        await records.finished(job.id, final);
        return announce(job, final.status);
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
          launcher,
          isolation,
        },
        createLogSink(db, bus, job.id),
      );
      entry.handle = handle;
      // A stop requested between claim and spawn.
      if (entry.final) handle.cancel(entry.final.error ?? 'canceled');
      const pid = await handle.started;
      if (pid) await records.started(job.id, pid);
      const result = await handle.done;
      const final = entry.final ?? { status: result.outcome, exitCode: result.exitCode, error: result.error };
      const { stdoutBytes, stderrBytes, stdoutTruncated, stderrTruncated } = result;
      await records.finished(job.id, final, { stdoutBytes, stderrBytes, stdoutTruncated, stderrTruncated });
      jlog.debug('job finished', { status: final.status, exitCode: final.exitCode });
      announce(job, final.status);
    } catch (err) {
      jlog.error('job run failed', { err });
      await records.finished(job.id, { status: 'failed', exitCode: null, error: `internal error: ${(err as Error).message}` }).catch(() => {});
      announce(job, 'failed');
    }
  }

  function launch(job: Job) {
    let resolveFinished!: () => void;
    const entry: Active = { handle: null, final: null, finished: new Promise((r) => (resolveFinished = r)) };
    active.set(job.id, entry);
    announce(job, 'running');
    void queue.add(async () => {
      try {
        await run(job, entry);
      } finally {
        active.delete(job.id);
        resolveFinished();
        wake();
      }
    });
  }

  async function pass() {
    try {
      do {
        passAgain = false;
        const slots = config.workerConcurrency - active.size;
        if (!accepting || slots <= 0) break;
        const jobs = await claimJobs(db, { workerId: id, slots, defaultLimit: await defaultLimit(), fairness });
        if (jobs.length === 0) break;
        for (const job of jobs) launch(job);
        // A full take may mean more is waiting for slots that free later.
      } while (passAgain);
    } catch (err) {
      wlog.error('dispatch pass failed', { err });
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

  async function stopLocal(jobId: string, final: FinalState): Promise<boolean> {
    const entry = active.get(jobId);
    if (!entry) return false;
    entry.final ??= final;
    entry.handle?.cancel(final.error ?? 'canceled');
    await entry.finished;
    return true;
  }

  return {
    id,
    wake,
    stopLocal,
    activeCount: () => active.size,

    async start() {
      await liveness.reconcileOnStart();
      await liveness.register();
      accepting = true;
      unsubscribe.push(bus.subscribe('dispatch.wake', () => wake()));
      unsubscribe.push(
        bus.subscribe('job.control', (msg) => {
          if (active.has(msg.jobId) && msg.final) void stopLocal(msg.jobId, msg.final);
        }),
      );
      timers.push(setInterval(() => wake(), SAFETY_POLL_MS).unref());
      timers.push(
        setInterval(() => {
          liveness.heartbeat().then(() => liveness.reap()).catch((err) => wlog.error('heartbeat failed', { err }));
        }, config.heartbeatMs).unref(),
      );
      wlog.info('worker started', { concurrency: config.workerConcurrency });
      wake();
    },

    async shutdown(graceMs) {
      accepting = false;
      for (const t of timers) clearInterval(t);
      for (const u of unsubscribe) u();
      await passRunning;
      if (active.size) {
        wlog.info('waiting for running jobs', { running: active.size, graceMs });
        const all = Promise.all([...active.values()].map((a) => a.finished));
        const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
        if (timedOut) {
          const final: FinalState = { status: 'failed', exitCode: null, error: 'killed at worker shutdown' };
          await Promise.all([...active.keys()].map((jobId) => stopLocal(jobId, final)));
        }
      }
      await queue.onIdle();
      await liveness.unregister().catch(() => {});
    },
  };
}
