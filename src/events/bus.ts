// One pub/sub interface for everything that moves between parts of the
// system: job status changes, log chunks, dispatcher wake-ups and job
// control. In-process by default; a Redis transport (events/redisBus.ts)
// carries the same messages between processes.
import { EventEmitter } from 'node:events';

export interface JobChangedEvent {
  jobId: string;
  ownerId: string;
  batchId: string | null;
  status: string;
}

export interface LogChunkEvent {
  jobId: string;
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
  at: string;
}

export interface JobControlEvent {
  jobId: string;
  action: 'cancel' | 'force';
  /** For 'force': the final state to record once the process is gone. */
  final?: { status: 'success' | 'failed' | 'canceled'; exitCode: number | null; error: string | null };
}

export interface Topics {
  /** Any job changed status (dispatcher, jobEvents, batch status). */
  'job.changed': JobChangedEvent;
  /** A chunk of output of one job; the channel is per job. */
  'job.log': LogChunkEvent;
  /** Work may be claimable: a job was submitted, a slot freed, a limit changed. */
  'dispatch.wake': Record<string, never>;
  /** Ask whichever worker runs a job to stop it. */
  'job.control': JobControlEvent;
  /** A user's role, activity or limit changed: cached copies are stale. */
  'user.changed': { userId: string };
  /** The default concurrency limit changed. */
  'limits.changed': Record<string, never>;
}

export type Topic = keyof Topics;

export interface EventBus {
  publish<T extends Topic>(topic: T, payload: Topics[T], key?: string): void;
  /** key narrows to one job's channel (job.log, job.changed); returns the unsubscribe. */
  subscribe<T extends Topic>(topic: T, handler: (payload: Topics[T]) => void, key?: string): () => void;
  listenerCount(): number;
  /**
   * Calls `handler` each time the transport is back after an outage, once it
   * listens again: events published meanwhile may be lost, so whoever waits
   * for one re-reads the database. Never called for the in-process bus, which
   * cannot lose events. Returns the removal.
   */
  onReconnect(handler: () => void): () => void;
  close(): Promise<void>;
}

const channel = (topic: string, key?: string) => (key ? `${topic}:${key}` : topic);

export function createLocalBus(): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publish(topic, payload, key) {
      emitter.emit(channel(topic), payload);
      if (key) emitter.emit(channel(topic, key), payload);
    },
    subscribe(topic, handler, key) {
      const name = channel(topic, key);
      const h = handler as (p: unknown) => void;
      emitter.on(name, h);
      return () => void emitter.off(name, h);
    },
    listenerCount() {
      return emitter.eventNames().reduce((n, e) => n + emitter.listenerCount(e), 0);
    },
    onReconnect() {
      return () => {};
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}
