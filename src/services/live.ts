// Live views of jobs for subscriptions and the log stream route: a job as it
// changes, status changes of many jobs, and a job's output from any `seq` on
// until the job ends. Everything moves through the EventBus; the database is
// read to catch up (stored output, the row after a change) and, because the
// bus can lose events (a Redis outage here or in the process that published),
// by one reconciliation per process: when the bus reconnects and every
// RECONCILE_MS, it reads the status of every followed job in one query and
// wakes only the streams that missed something. Knows nothing of GraphQL or HTTP.
import { Forbidden, NotAuthenticated } from '../errors.js';
import type { Job } from '../generated/sqlite/client.js';
import type { EventBus, JobChangedEvent, LogChunkEvent } from '../events/bus.js';
import type { ServiceDeps, Viewer } from './deps.js';
import { isTerminal } from './jobSpec.js';
import { logsGone } from './logRemoval.js';
import { authorize, mayRead, sameRights } from './policy.js';

export interface LogChunk {
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
  at: Date;
}

/** An iterator whose return() stops it at once, even while it waits for the next event. */
export type LiveIterator<T> = AsyncIterableIterator<T> & { return(): Promise<IteratorResult<T>> };

export interface LiveLimits {
  /**
   * Stored chunks read per query while catching up, at first; the page then
   * grows or shrinks to hold about `replayPageChars` characters (a chunk
   * holds 1 to 64 Ki characters), up to 256 chunks.
   */
  replayPage: number;
  replayPageChars: number;
  /** Live chunks held for one slow subscriber before it falls back to the database. */
  maxBufferedChunks: number;
  maxBufferedChars: number;
}

export const DEFAULT_LIVE_LIMITS: LiveLimits = { replayPage: 4, replayPageChars: 256 * 1024, maxBufferedChunks: 1000, maxBufferedChars: 1024 * 1024 };

const MAX_REPLAY_PAGE = 256;

// One LogChunk per published chunk, shared by every follower of the job: the
// GraphQL layer then executes it once for all of them
// (graphql/sharedEvents.ts), and 500 followers do not make 500 copies.
const liveChunks = new WeakMap<LogChunkEvent, LogChunk>();
function liveChunk(c: LogChunkEvent): LogChunk {
  let chunk = liveChunks.get(c);
  if (!chunk) liveChunks.set(c, (chunk = { seq: c.seq, stream: c.stream, data: c.data, at: new Date(c.at) }));
  return chunk;
}

// Per jobEvents subscription: the last status sent per job (to drop repeats), oldest forgotten first.
const MAX_REMEMBERED_JOBS = 10_000;

interface AccessChecks {
  jobs: { visible(viewer: Viewer, id: string): Promise<Job> };
  batches: { visible(viewer: Viewer, id: string): Promise<unknown> };
  /** The viewer as they stand now, or null when their session or token no longer counts (services/auth.ts). */
  auth: { revalidate(viewer: Viewer): Promise<Viewer | null> };
}

/**
 * How long a stream may go on delivering without its viewer being checked
 * again, should the announcement of a change be lost (a Redis outage).
 */
export const RECHECK_MS = 30_000;

/**
 * Safety interval of the reconciliation: how long a stream may wait for an
 * event the bus lost (the job ended during a Redis outage somewhere) before it
 * learns from the database. Slow on purpose: it is one query per process.
 */
export const RECONCILE_MS = 5_000;
/** Ids per reconciliation query. */
const RECONCILE_PAGE = 500;

/** Wakes one waiting loop; a notify with nobody waiting is dropped (loops re-check state before waiting). */
class Wakeup {
  private resolve: (() => void) | null = null;
  wait(): Promise<void> {
    return new Promise((r) => (this.resolve = r));
  }
  notify(): void {
    const r = this.resolve;
    this.resolve = null;
    r?.();
  }
}

/**
 * Wraps a generator so that return()/throw() first run `stop` (unsubscribe,
 * wake the loop): a generator's own return() is only honoured at its next
 * yield, which for an idle job could be never.
 */
function stoppable<T>(gen: AsyncGenerator<T, void>, stop: () => void): LiveIterator<T> {
  const it: LiveIterator<T> = {
    next: () => gen.next(),
    return: async () => {
      stop();
      await gen.return(undefined);
      return { done: true, value: undefined };
    },
    throw: async (err?: unknown) => {
      stop();
      return gen.throw(err);
    },
    [Symbol.asyncIterator]: () => it,
  };
  return it;
}

export function createLiveService({ db }: Pick<ServiceDeps, 'db'>, bus: EventBus, checks: AccessChecks, limits: LiveLimits = DEFAULT_LIVE_LIMITS) {
  const prisma = db.prisma;

  // --- Reconciliation ---------------------------------------------------------
  // Each open stream registers what it waits on with a callback that gets the
  // job's current status: one timer and one query per tick for the whole
  // process, however many streams, and a stream reads more only when a status
  // differs from what it last delivered.
  type JobState = Pick<Job, 'id' | 'status' | 'ownerId' | 'batchId' | 'createdAt'>;
  const STATE = { id: true, status: true, ownerId: true, batchId: true, createdAt: true } as const;
  type Reconcile = (job: JobState) => void;
  /** followJob and followLog streams, by job id. */
  const followers = new Map<string, Set<Reconcile>>();
  /** jobEvents streams: the ids they saw in a status that is not final, and their callback. */
  const eventStreams = new Set<{ watching(): Iterable<string>; reconcile: Reconcile }>();
  /** When jobs created since were last looked for (for jobEvents: jobs whose every event was lost). */
  let createdCheckedAt = 0;
  let ticker: NodeJS.Timeout | null = null;
  let reconciling = false;

  function follow(jobId: string, reconcile: Reconcile): () => void {
    let set = followers.get(jobId);
    if (!set) followers.set(jobId, (set = new Set()));
    set.add(reconcile);
    startTicker();
    return () => {
      set.delete(reconcile);
      if (set.size === 0 && followers.get(jobId) === set) followers.delete(jobId);
      stopTickerWhenIdle();
    };
  }
  function startTicker(): void {
    if (ticker) return;
    createdCheckedAt = Date.now();
    ticker = setInterval(() => void reconcileAll(), RECONCILE_MS);
    ticker.unref();
  }
  function stopTickerWhenIdle(): void {
    if (ticker && followers.size === 0 && eventStreams.size === 0) {
      clearInterval(ticker);
      ticker = null;
    }
  }

  /** Reads the status of every job some stream waits on (and, for jobEvents, of jobs created lately) and hands it to those streams. */
  async function reconcileAll(): Promise<void> {
    if (reconciling) return; // a slow database: the next tick comes soon enough
    reconciling = true;
    try {
      // Step 1: jobs streams already know of.
      const ids = new Set(followers.keys());
      for (const s of eventStreams) for (const id of s.watching()) ids.add(id);
      const all = [...ids];
      for (let i = 0; i < all.length; i += RECONCILE_PAGE) {
        const rows = await prisma.job.findMany({ where: { id: { in: all.slice(i, i + RECONCILE_PAGE) } }, select: STATE });
        for (const row of rows) {
          followers.get(row.id)?.forEach((r) => r(row));
          for (const s of eventStreams) s.reconcile(row);
        }
      }
      // Step 2 (jobEvents only): jobs created since the last look, which a
      // stream may never have heard of. The window overlaps the previous one
      // by RECONCILE_MS (clocks of other hosts, commits in flight); streams
      // drop what they already sent.
      if (eventStreams.size > 0) {
        const since = new Date(createdCheckedAt - RECONCILE_MS);
        createdCheckedAt = Date.now();
        const rows = await prisma.job.findMany({ where: { createdAt: { gte: since } }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: RECONCILE_PAGE, select: STATE });
        for (const row of rows) for (const s of eventStreams) s.reconcile(row);
      }
    } catch {
      // The database is unreachable: the next tick tries again.
    } finally {
      reconciling = false;
    }
  }
  // Events published while this process's bus was away are lost: catch up at once.
  bus.onReconnect(() => void reconcileAll());

  // Streams by user, told when that user's access may have changed: one bus
  // listener for all of them, however many streams are open.
  const watchers = new Map<string, Set<() => void>>();
  bus.subscribe('user.changed', ({ userId }) => watchers.get(userId)?.forEach((w) => w()));
  function watch(userId: string, onChange: () => void): () => void {
    let set = watchers.get(userId);
    if (!set) watchers.set(userId, (set = new Set()));
    set.add(onChange);
    return () => {
      set.delete(onChange);
      if (set.size === 0 && watchers.get(userId) === set) watchers.delete(userId);
    };
  }

  /**
   * Ends a stream once its viewer's access changed. A change announced for
   * the viewer (session or token revoked, password, role or activity
   * changed) re-reads their access; so does the first event after RECHECK_MS.
   * No event is delivered before a pending check is done, and a viewer who
   * lost access or whose rights changed gets an error instead of the next event.
   */
  function guarded<T>(viewer: Viewer, inner: LiveIterator<T>): LiveIterator<T> {
    let checking: Promise<void> | null = null;
    let checkedAt = Date.now();
    let refused: Error | null = null;
    let interrupt: ((err: Error) => void) | null = null;

    const recheck = () => {
      checkedAt = Date.now();
      checking = checks.auth.revalidate(viewer).then(
        (now) => {
          if (now && sameRights(viewer, now)) return;
          refused = now
            ? new Forbidden('Your role or token scopes changed; subscribe again')
            : new NotAuthenticated('Your session ended (logged out, revoked, password changed or account deactivated); log in and subscribe again');
          interrupt?.(refused);
          void inner.return();
        },
        () => {}, // the database is unreachable: the next check decides
      );
    };
    const off = watch(viewer.id, recheck);
    const end = () => {
      ended = true;
      off();
    };
    const settle = async () => {
      if (!checking && Date.now() - checkedAt > RECHECK_MS) recheck();
      const pending = checking;
      if (pending) await pending;
      if (checking === pending) checking = null;
      if (refused) throw refused;
    };

    let ended = false;
    const it: LiveIterator<T> = {
      async next() {
        // The refusal is said once; after it the stream is over (a caller that asks again gets done, not the error again).
        if (ended) return { done: true, value: undefined };
        try {
          await settle();
          const r = await new Promise<IteratorResult<T>>((resolve, reject) => {
            interrupt = reject;
            inner.next().then(resolve, reject);
          });
          interrupt = null;
          await settle();
          if (r.done) end();
          return r;
        } catch (err) {
          end();
          throw err;
        }
      },
      async return() {
        end();
        return inner.return();
      },
      async throw(err?: unknown) {
        end();
        return inner.throw!(err);
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /**
   * The job now, then again whenever it changes; ends after a terminal state
   * was delivered (or when the job disappears).
   */
  async function followJob(viewer: Viewer, jobId: string): Promise<LiveIterator<Job>> {
    let closed = false;
    let dirty = false;
    const wake = new Wakeup();
    // Listen before the first read: a change in between only causes one more read.
    const off = bus.subscribe('job.changed', () => ((dirty = true), wake.notify()), jobId);
    // A status other than the last one delivered means a change event was lost: read the row again.
    let lastStatus: string | null = null;
    const unfollow = follow(jobId, (row) => {
      if (row.status === lastStatus) return;
      dirty = true;
      wake.notify();
    });
    const stop = () => {
      if (closed) return;
      closed = true;
      off();
      unfollow();
      wake.notify();
    };
    let first: Job;
    try {
      first = await checks.jobs.visible(viewer, jobId);
    } catch (err) {
      stop();
      throw err;
    }

    async function* run(): AsyncGenerator<Job, void> {
      let job: Job | null = first;
      let last = '';
      try {
        while (!closed) {
          if (!job) {
            if (!dirty) {
              await wake.wait();
              continue;
            }
            dirty = false;
            job = await prisma.job.findUnique({ where: { id: jobId } });
            if (closed || !job) return;
          }
          const snapshot = JSON.stringify(job);
          lastStatus = job.status;
          if (snapshot !== last) {
            last = snapshot;
            yield job;
          }
          if (isTerminal(job.status)) return;
          job = null;
        }
      } finally {
        stop();
      }
    }
    return guarded(viewer, stoppable(run(), stop));
  }

  /**
   * Status changes of the viewer's jobs (admin: everyone's), optionally of one
   * batch, as the job rows after the change. Changes that arrive faster than
   * the subscriber reads are coalesced per job (it gets the row as it is now),
   * so a slow subscriber costs at most one pending entry per changed job.
   */
  async function jobEvents(viewer: Viewer, batchId: string | null): Promise<LiveIterator<Job>> {
    authorize(viewer, 'job.read');
    if (batchId) await checks.batches.visible(viewer, batchId);
    let closed = false;
    const pending = new Set<string>();
    const wake = new Wakeup();
    const wanted = (e: JobChangedEvent) => mayRead(viewer, 'job.read', e) && (!batchId || e.batchId === batchId);
    const off = bus.subscribe('job.changed', (e) => {
      if (!wanted(e)) return;
      pending.add(e.jobId);
      wake.notify();
    });
    // The reconciliation hands over jobs this stream saw in a status that is
    // not final, and jobs created lately; a status other than the last one
    // sent is a lost change. Jobs created before the stream opened are not
    // its business unless it heard of them. (lastStatus holds at most
    // MAX_REMEMBERED_JOBS entries.)
    const lastStatus = new Map<string, string>();
    const openedAt = Date.now();
    const stream = {
      *watching() {
        for (const [id, status] of lastStatus) if (!isTerminal(status)) yield id;
      },
      reconcile(row: JobState) {
        const sent = lastStatus.get(row.id);
        if (sent === undefined ? row.createdAt.getTime() < openedAt : sent === row.status) return;
        if (!wanted({ jobId: row.id, ownerId: row.ownerId, batchId: row.batchId, status: row.status })) return;
        pending.add(row.id);
        wake.notify();
      },
    };
    eventStreams.add(stream);
    startTicker();
    const stop = () => {
      if (closed) return;
      closed = true;
      off();
      eventStreams.delete(stream);
      stopTickerWhenIdle();
      pending.clear();
      wake.notify();
    };

    async function* run(): AsyncGenerator<Job, void> {
      try {
        while (!closed) {
          const next = pending.values().next();
          if (next.done) {
            await wake.wait();
            continue;
          }
          const jobId = next.value;
          pending.delete(jobId);
          const job = await prisma.job.findUnique({ where: { id: jobId } });
          if (closed) return;
          if (!job || lastStatus.get(jobId) === job.status) continue;
          lastStatus.delete(jobId);
          lastStatus.set(jobId, job.status);
          if (lastStatus.size > MAX_REMEMBERED_JOBS) lastStatus.delete(lastStatus.keys().next().value!);
          yield job;
        }
      } finally {
        stop();
      }
    }
    return guarded(viewer, stoppable(run(), stop));
  }

  /**
   * A job's output after `after`, in seq order, each chunk once, then live
   * until the job is terminal and every stored chunk was delivered.
   *
   * Order of work: listen to the job's log channel first (buffering), then
   * replay stored chunks from the database in pages, then deliver buffered
   * and live chunks, dropping those at or below the last seq delivered. The
   * log sink stores a chunk before publishing it, so anything published
   * before we listened is in the database.
   *
   * Backpressure: chunks are produced only when the consumer asks for the
   * next one. While it is busy, live chunks wait in a buffer capped at
   * `maxBufferedChunks` / `maxBufferedChars`; past the cap the buffer is
   * dropped and the follower goes back to the database from the last seq it
   * delivered (every chunk is stored before it is published), so a slow
   * consumer still gets every chunk in order, at the cost of extra reads,
   * and memory stays bounded. A gap in live seqs (e.g. a dropped buffer, or
   * another transport's reordering) also triggers one catch-up read.
   *
   * At the terminal event (published after the last chunk was stored) one
   * final read fetches whatever is left, then the iterator completes.
   */
  async function followLog(viewer: Viewer, jobId: string, after = 0): Promise<LiveIterator<LogChunk>> {
    let closed = false;
    let terminal = false;
    let needDb = true;
    let buffer: LogChunk[] = [];
    let bufferedChars = 0;
    const wake = new Wakeup();

    const offLog = bus.subscribe(
      'job.log',
      (c) => {
        if (closed || c.jobId !== jobId) return;
        buffer.push(liveChunk(c));
        bufferedChars += c.data.length;
        if (buffer.length > limits.maxBufferedChunks || bufferedChars > limits.maxBufferedChars) {
          buffer = [];
          bufferedChars = 0;
          needDb = true;
        }
        wake.notify();
      },
      jobId,
    );
    const offChanged = bus.subscribe(
      'job.changed',
      (e) => {
        if (!isTerminal(e.status)) return;
        terminal = true;
        wake.notify();
      },
      jobId,
    );
    // A job that is final in the database ends the stream even if its terminal
    // event was lost: the final read below fetches every chunk after the last
    // one delivered, so nothing is missed or sent twice.
    const unfollow = follow(jobId, (row) => {
      if (!isTerminal(row.status) || terminal) return;
      terminal = true;
      wake.notify();
    });
    const stop = () => {
      if (closed) return;
      closed = true;
      offLog();
      offChanged();
      unfollow();
      buffer = [];
      wake.notify();
    };

    try {
      // Read after listening: a terminal event cannot fall between the two.
      const job = await checks.jobs.visible(viewer, jobId);
      if (job.logsRemovedAt) throw logsGone({ id: job.id, logsRemovedAt: job.logsRemovedAt });
      if (isTerminal(job.status)) terminal = true;
    } catch (err) {
      stop();
      throw err;
    }

    let last = Math.max(0, after);
    let pageSize = limits.replayPage;

    async function* replay(): AsyncGenerator<LogChunk, void> {
      needDb = false;
      for (;;) {
        const take = pageSize;
        const page = await prisma.jobLogChunk.findMany({
          where: { jobId, seq: { gt: last } },
          orderBy: { seq: 'asc' },
          take,
          select: { seq: true, stream: true, data: true, at: true },
        });
        const full = page.length === take;
        // Pages of about replayPageChars whatever the chunk sizes: few queries for small chunks, little memory for big ones.
        const chars = page.reduce((n, c) => n + c.data.length, 0);
        if (full && chars * 2 < limits.replayPageChars) pageSize = Math.min(MAX_REPLAY_PAGE, pageSize * 2);
        else if (chars > limits.replayPageChars * 2) pageSize = Math.max(1, pageSize >> 1);
        // Hand chunks out one by one and let go of each once delivered.
        for (let c = page.shift(); c; c = page.shift()) {
          if (closed) return;
          last = c.seq;
          yield { seq: c.seq, stream: c.stream === 'stderr' ? 'stderr' : 'stdout', data: c.data, at: c.at };
        }
        if (!full || closed) return;
      }
    }

    async function* run(): AsyncGenerator<LogChunk, void> {
      let gapChecked = -1;
      try {
        while (!closed) {
          if (needDb) {
            const finalPass = terminal;
            yield* replay();
            if (finalPass) return;
            continue;
          }
          while (buffer.length > 0 && !needDb && !closed) {
            const c = buffer[0]!;
            if (c.seq <= last) {
              buffer.shift();
              bufferedChars -= c.data.length;
              continue;
            }
            if (c.seq > last + 1 && gapChecked !== c.seq) {
              // Missing seqs: read the store once; if they are not there (output
              // replaced by a force-complete), deliver what we have.
              gapChecked = c.seq;
              needDb = true;
              break;
            }
            buffer.shift();
            bufferedChars -= c.data.length;
            last = c.seq;
            yield c;
          }
          if (needDb || closed) continue;
          if (terminal) {
            needDb = true; // the final read
            continue;
          }
          await wake.wait();
        }
      } finally {
        stop();
      }
    }
    return guarded(viewer, stoppable(run(), stop));
  }

  return { followJob, jobEvents, followLog };
}

export type LiveService = ReturnType<typeof createLiveService>;
