// The EventBus across processes: every event is delivered locally at once
// and published to Redis for the other processes. Log chunks go to a
// channel per job, subscribed only while this process has a listener for
// that job, so processes do not receive every job's output.
//
// Redis may go away and come back. Then:
// - start-up waits for it, retrying with backoff and saying at a bounded
//   rate which URL it tries and what to check;
// - publishes are held in a bounded queue (oldest dropped past the bound, and
//   counted) and sent once Redis answers again; losing some is safe because
//   every event stands for a change already in the database;
// - the state is logged once per change (unreachable / reachable again), never
//   per event, and `ping()` (health) answers false at once while it is down;
// - once the subscriber listens again, onReconnect handlers run so live views
//   re-read what they may have missed.
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';
import { createLocalBus, type EventBus, type Topic, type Topics } from './bus.js';

interface Envelope {
  origin: string;
  topic: Topic;
  key?: string;
  payload: unknown;
}

export interface RedisBus extends EventBus {
  /** True when Redis answered a PING within a second; false at once while it is known to be unreachable. */
  ping(): Promise<boolean>;
  /** Whether both connections (publish, subscribe) are up and subscribed. */
  isUp(): boolean;
}

export interface RedisBusOptions {
  /** Channel names are `<prefix>:<topic>` (config REDIS_PREFIX). */
  prefix: string;
  /** Bound of the queue of publishes held while Redis is unreachable (messages, characters). */
  maxQueued?: number;
  maxQueuedChars?: number;
  /** Told of every error of either connection and every failed publish (metrics). */
  onError?: (err: Error) => void;
}

const perKeyOnly = (topic: Topic) => topic === 'job.log';
const BROADCAST_TOPICS = ['job.changed', 'dispatch.wake', 'job.control', 'user.changed', 'limits.changed'] satisfies Topic[];

/** Reconnect delays: 100 ms doubling up to this, so an outage ends for us at most this long after Redis is back. */
export const REDIS_RETRY_MAX_MS = 3_000;
/** While start-up waits for Redis, at most one line per this long (plus the first). */
const STARTUP_LOG_EVERY_MS = 10_000;
/** How often an idle connection is checked, and how long a PING may take before it is dropped and reopened. */
const WATCHDOG_MS = 5_000;
const WATCHDOG_TIMEOUT_MS = 3_000;
/** A publish not acknowledged in this time is taken as failed and queued again (a duplicate is harmless). */
const COMMAND_TIMEOUT_MS = 5_000;
const FLUSH_BATCH = 200;

/** The URL without its password, for logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'REDIS_URL';
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_r, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

export async function createRedisBus(url: string, log: Logger, opts: RedisBusOptions): Promise<RedisBus> {
  const origin = randomUUID();
  const local = createLocalBus();
  const shownUrl = redactRedisUrl(url);
  const channelPrefix = `${opts.prefix}:`;
  const maxQueued = opts.maxQueued ?? 10_000;
  const maxQueuedChars = opts.maxQueuedChars ?? 16 * 1024 * 1024;
  let closing = false;

  // --- Connections -------------------------------------------------------
  // No offline queue and no retries per command: a command sent while Redis
  // is away fails at once (maxRetriesPerRequest 0 also fails those in flight
  // when a connection closes) and this module decides what to keep.
  let lastError = '';
  let startupAttempts = 0;
  let lastStartupLog = 0;
  let everUp = false;
  const retryStrategy = (attempt: number) => {
    const delay = Math.min(100 * 2 ** Math.min(attempt - 1, 10), REDIS_RETRY_MAX_MS);
    if (!everUp && !closing) sayStartupRetry(attempt, delay);
    return delay;
  };
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy,
  };
  const pub = new Redis(url, options);
  const sub = new Redis(url, options);
  // Errors come with every failed reconnect; they are reported through the state lines below, not one by one.
  for (const c of [pub, sub]) {
    c.on('error', (err: Error) => {
      lastError = err.message;
      opts.onError?.(err);
    });
  }

  function sayStartupRetry(attempt: number, delay: number): void {
    startupAttempts = Math.max(startupAttempts, attempt);
    const now = Date.now();
    if (lastStartupLog !== 0 && now - lastStartupLog < STARTUP_LOG_EVERY_MS) return;
    lastStartupLog = now;
    log.warn(`cannot reach Redis at ${shownUrl} (${lastError || 'no answer'}); retrying (attempt ${attempt}, next in ${delay} ms, then at most every ${REDIS_RETRY_MAX_MS} ms) and waiting for it before starting. Check that Redis is running, that REDIS_URL is right and that this host can reach it.`, {
      url: shownUrl,
      attempt,
    });
  }

  // Publishes waiting for Redis, oldest first (see hold()).
  interface Held {
    channel: string;
    message: string;
  }
  const queue: Held[] = [];
  let queuedChars = 0;
  let flushing = false;

  // --- State: up when both connections are ready and the subscriber listens ---
  let subscribed = false;
  let up = false;
  let downSince = 0;
  let dropped = 0;
  let droppedReported = 0;
  const reconnectHandlers = new Set<() => void>();
  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => (resolveStarted = r));

  function refresh(): void {
    const nowUp = !closing && pub.status === 'ready' && sub.status === 'ready' && subscribed;
    if (nowUp === up) return;
    up = nowUp;
    if (!up) {
      downSince = Date.now();
      log.warn(`Redis at ${shownUrl} is unreachable (${lastError || 'connection closed'}): events for other processes are held (up to ${maxQueued}) and live views re-read the database until it is back`, { url: shownUrl });
      return;
    }
    if (!everUp) {
      everUp = true;
      if (startupAttempts > 0) log.info(`Redis at ${shownUrl} is reachable after ${startupAttempts} retries`, { url: shownUrl });
      resolveStarted();
      return;
    }
    const lost = dropped - droppedReported;
    droppedReported = dropped;
    log.info(`Redis at ${shownUrl} is reachable again after ${Math.round((Date.now() - downSince) / 1000)} s; ${queue.length} held events are being sent${lost ? `, ${lost} older ones were dropped` : ''}`, { url: shownUrl, dropped: lost });
    void flush();
    for (const h of [...reconnectHandlers]) {
      try {
        h();
      } catch (err) {
        log.error('redis reconnect handler failed', { err });
      }
    }
  }

  // --- Subscriptions -----------------------------------------------------
  const keyedRefs = new Map<string, number>();
  const channelFor = (topic: Topic, key?: string) => (perKeyOnly(topic) ? `${channelPrefix}${topic}:${key}` : `${channelPrefix}${topic}`);

  // On every (re)connection the subscriber starts with no channels: listen to all wanted ones, then count as up.
  sub.on('ready', () => {
    const channels = [...BROADCAST_TOPICS.map((t) => channelFor(t)), ...keyedRefs.keys()];
    sub.subscribe(...channels).then(
      () => {
        subscribed = true;
        refresh();
      },
      (err: Error) => {
        // The connection went away meanwhile; its next 'ready' tries again.
        lastError = err.message;
      },
    );
  });
  sub.on('close', () => {
    subscribed = false;
    refresh();
  });
  pub.on('ready', () => {
    refresh();
    void flush();
  });
  pub.on('close', refresh);

  sub.on('message', (_channel: string, raw: string) => {
    let msg: Envelope;
    try {
      msg = JSON.parse(raw) as Envelope;
    } catch {
      return;
    }
    if (msg.origin === origin) return;
    local.publish(msg.topic, msg.payload as never, msg.key);
  });

  // --- Publishing with a bounded hold queue ---------------------------------

  function hold(m: Held, atFront = false): void {
    if (atFront) queue.unshift(m);
    else queue.push(m);
    queuedChars += m.message.length;
    // Oldest first: the newest events describe the most recent state.
    while (queue.length > maxQueued || (queuedChars > maxQueuedChars && queue.length > 1)) {
      queuedChars -= queue.shift()!.message.length;
      dropped++;
    }
    if (pub.status === 'ready' && !flushing) setImmediate(() => void flush());
  }

  function send(m: Held): void {
    pub.publish(m.channel, m.message).catch((err: Error) => {
      lastError = err.message;
      opts.onError?.(err);
      hold(m);
    });
  }

  /** Sends held messages in order, in pipelined batches, while the connection lasts. */
  async function flush(): Promise<void> {
    if (flushing) return;
    flushing = true;
    try {
      while (queue.length > 0 && pub.status === 'ready' && !closing) {
        const batch = queue.splice(0, FLUSH_BATCH);
        for (const m of batch) queuedChars -= m.message.length;
        const pipeline = pub.pipeline();
        for (const m of batch) pipeline.publish(m.channel, m.message);
        const results = await pipeline.exec().catch((err: Error) => batch.map(() => [err, null] as [Error, null]));
        const failed = batch.filter((_m, i) => results?.[i]?.[0]);
        if (failed.length > 0) {
          // Back at the front, in order; the next 'ready' (or the watchdog) resumes.
          for (let i = failed.length - 1; i >= 0; i--) hold(failed[i]!, true);
          break;
        }
      }
    } finally {
      flushing = false;
    }
  }

  // --- Watchdog: a silent peer (dropped network) never closes the socket by itself ---
  let watchdogBusy = false;
  const watchdog = setInterval(() => {
    if (watchdogBusy || closing) return;
    watchdogBusy = true;
    void Promise.all(
      [pub, sub].map(async (c) => {
        if (c.status !== 'ready') return;
        try {
          await withTimeout(c.ping(), WATCHDOG_TIMEOUT_MS);
        } catch (err) {
          lastError = `no answer to PING: ${(err as Error).message}`;
          c.disconnect(true); // closes now and reconnects through retryStrategy
        }
      }),
    ).finally(() => (watchdogBusy = false));
    if (queue.length > 0 && pub.status === 'ready') void flush();
  }, WATCHDOG_MS);
  watchdog.unref();

  // --- Start-up: wait until both connections are up, however long it takes ---
  for (const c of [pub, sub]) c.connect().catch(() => {}); // failures are retried by retryStrategy and reported above
  await started;

  return {
    publish<T extends Topic>(topic: T, payload: Topics[T], key?: string) {
      local.publish(topic, payload, key);
      const envelope: Envelope = { origin, topic, key, payload };
      const m = { channel: channelFor(topic, key), message: JSON.stringify(envelope) };
      // Behind held messages a new one waits its turn, so order is kept across an outage.
      if (pub.status === 'ready' && queue.length === 0) send(m);
      else hold(m);
    },
    subscribe<T extends Topic>(topic: T, handler: (payload: Topics[T]) => void, key?: string) {
      const off = local.subscribe(topic, handler, key);
      if (!perKeyOnly(topic) || !key) return off;
      const channel = channelFor(topic, key);
      const refs = (keyedRefs.get(channel) ?? 0) + 1;
      keyedRefs.set(channel, refs);
      // While the subscriber is down, its next 'ready' subscribes to every channel in keyedRefs.
      if (refs === 1 && sub.status === 'ready') void sub.subscribe(channel).catch(() => {});
      let done = false;
      return () => {
        if (done) return;
        done = true;
        off();
        const left = (keyedRefs.get(channel) ?? 1) - 1;
        if (left > 0) keyedRefs.set(channel, left);
        else {
          keyedRefs.delete(channel);
          if (sub.status === 'ready') void sub.unsubscribe(channel).catch(() => {});
        }
      };
    },
    listenerCount: () => local.listenerCount(),
    onReconnect(handler: () => void) {
      reconnectHandlers.add(handler);
      return () => void reconnectHandlers.delete(handler);
    },
    isUp: () => up,
    async ping() {
      if (!up) return false;
      try {
        return (await withTimeout(pub.ping(), 1000)) === 'PONG';
      } catch {
        return false;
      }
    },
    async close() {
      closing = true;
      clearInterval(watchdog);
      reconnectHandlers.clear();
      await local.close();
      pub.disconnect();
      sub.disconnect();
    },
  };
}
