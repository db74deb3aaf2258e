// Gauges read at scrape time: the queue and the workers' leases from the
// database (the reads behind the admin status: a grouped count over the
// status index, the oldest pending job, the workers table), shared by scrapes
// that arrive within CACHE_MS of each other so several Prometheus servers
// cost one read; Redis and WebSocket state from this process.
import { Gauge } from 'prom-client';
import type { Database } from '../db/client.js';
import { readQueueDepth, readWorkerLeases, type QueueDepth } from '../services/status.js';
import type { Metrics } from './registry.js';

const CACHE_MS = 2000;

export interface QueueState extends QueueDepth {
  workers: number;
  /** Workers whose lease has run out and that have not been reaped yet. */
  workersExpired: number;
}

/** The queue and worker counts (the admin status's own reads), at most one read per CACHE_MS; a failed read is not cached. */
export function createQueueReader(db: Database): () => Promise<QueueState> {
  let cached: { at: number; value: Promise<QueueState> } | null = null;
  async function read(): Promise<QueueState> {
    const [queue, workers] = await Promise.all([readQueueDepth(db), readWorkerLeases(db)]);
    return { ...queue, workers: workers.length, workersExpired: workers.filter((w) => w.expired).length };
  }
  return () => {
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.value;
    const value = read();
    cached = { at: Date.now(), value };
    value.catch(() => (cached = null));
    return value;
  };
}

export interface StateSources {
  queue: () => Promise<QueueState>;
  /** Whether the Redis bus is connected; null without Redis. */
  redisUp: (() => boolean) | null;
  /** Open WebSockets by protocol; null without HTTP. */
  websockets: (() => Record<string, number>) | null;
}

export function registerStateGauges(metrics: Metrics, sources: StateSources) {
  const registers = [metrics.registry];
  new Gauge({
    name: 'jobrunner_queue_jobs',
    help: 'Jobs waiting (pending) and running, from the database (all processes)',
    labelNames: ['status'],
    registers,
    async collect() {
      // A database that does not answer leaves the gauge out; database_errors_total and /health say why.
      const q = await sources.queue().catch(() => null);
      this.reset();
      if (!q) return;
      this.set({ status: 'pending' }, q.pending);
      this.set({ status: 'running' }, q.running);
    },
  });
  new Gauge({
    name: 'jobrunner_queue_oldest_pending_seconds',
    help: 'How long the longest-waiting pending job has waited (0 when none waits)',
    registers,
    async collect() {
      const q = await sources.queue().catch(() => null);
      this.reset();
      if (q) this.set(q.oldestPendingAt ? Math.max(0, Date.now() - q.oldestPendingAt.getTime()) / 1000 : 0);
    },
  });
  new Gauge({
    name: 'jobrunner_workers',
    help: 'Registered workers, by lease state (expired: not renewed in time and not reaped yet)',
    labelNames: ['lease'],
    registers,
    async collect() {
      const q = await sources.queue().catch(() => null);
      this.reset();
      if (!q) return;
      this.set({ lease: 'held' }, q.workers - q.workersExpired);
      this.set({ lease: 'expired' }, q.workersExpired);
    },
  });
  if (sources.redisUp) {
    const up = sources.redisUp;
    new Gauge({ name: 'jobrunner_redis_up', help: '1 while the Redis event bus is connected', registers, collect() { this.set(up() ? 1 : 0); } });
  }
  if (sources.websockets) {
    const count = sources.websockets;
    new Gauge({
      name: 'jobrunner_websocket_connections',
      help: 'Open GraphQL WebSocket connections, by protocol',
      labelNames: ['protocol'],
      registers,
      collect() {
        for (const [protocol, n] of Object.entries(count())) this.set({ protocol }, n);
      },
    });
  }
}
