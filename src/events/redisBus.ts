// The EventBus across processes: every event is delivered locally at once
// and published to Redis for the other processes. Log chunks go to a
// channel per job, subscribed only while this process has a listener for
// that job, so processes do not receive every job's output.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { createLocalBus, type EventBus, type Topic, type Topics } from './bus.js';

const PREFIX = 'jobrunner:';

interface Envelope {
  origin: string;
  topic: Topic;
  key?: string;
  payload: unknown;
}

const perKeyOnly = (topic: Topic) => topic === 'job.log';

export async function createRedisBus(url: string, log: Logger): Promise<EventBus & { ping(): Promise<boolean> }> {
  const origin = randomUUID();
  const local = createLocalBus();
  const options = { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true } as const;
  const pub = new Redis(url, options);
  const sub = new Redis(url, options);
  for (const c of [pub, sub]) c.on('error', (err: Error) => log.warn('redis error', { err: err.message }));
  await Promise.all([pub.connect(), sub.connect()]);

  const keyedRefs = new Map<string, number>();
  await sub.subscribe(...(['job.changed', 'dispatch.wake', 'job.control', 'user.changed', 'limits.changed'] satisfies Topic[]).map((t) => `${PREFIX}${t}`));
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

  const channelFor = (topic: Topic, key?: string) => (perKeyOnly(topic) ? `${PREFIX}${topic}:${key}` : `${PREFIX}${topic}`);

  return {
    publish<T extends Topic>(topic: T, payload: Topics[T], key?: string) {
      local.publish(topic, payload, key);
      const envelope: Envelope = { origin, topic, key, payload };
      pub.publish(channelFor(topic, key), JSON.stringify(envelope)).catch((err: Error) => log.warn('redis publish failed', { topic, err: err.message }));
    },
    subscribe<T extends Topic>(topic: T, handler: (payload: Topics[T]) => void, key?: string) {
      const off = local.subscribe(topic, handler, key);
      if (!perKeyOnly(topic) || !key) return off;
      const channel = channelFor(topic, key);
      const refs = (keyedRefs.get(channel) ?? 0) + 1;
      keyedRefs.set(channel, refs);
      if (refs === 1) void sub.subscribe(channel).catch((err: Error) => log.warn('redis subscribe failed', { err: err.message }));
      let done = false;
      return () => {
        if (done) return;
        done = true;
        off();
        const left = (keyedRefs.get(channel) ?? 1) - 1;
        if (left > 0) keyedRefs.set(channel, left);
        else {
          keyedRefs.delete(channel);
          void sub.unsubscribe(channel).catch(() => {});
        }
      };
    },
    listenerCount: () => local.listenerCount(),
    async ping() {
      try {
        return (await Promise.race([pub.ping(), new Promise<string>((_r, reject) => setTimeout(() => reject(new Error('timeout')), 1000).unref())])) === 'PONG';
      } catch {
        return false;
      }
    },
    async close() {
      await local.close();
      pub.disconnect();
      sub.disconnect();
    },
  };
}
