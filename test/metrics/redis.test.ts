// Redis outages in the metrics: while the bus cannot reach Redis,
// jobrunner_redis_up is 0 and redis_errors_total grows; once it is back,
// redis_up is 1 again and redis_reconnects_total counts the return. The
// outage is real: Redis is reached through a TCP proxy the test cuts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type TcpProxy } from '../chaos/tcpProxy.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { parsePrometheusText, valueOf, type Family } from './promText.js';

describe('Redis in the metrics', () => {
  let proxy: TcpProxy;
  let s: TestServer;
  beforeAll(async () => {
    proxy = await startProxy('127.0.0.1', 6379);
    s = await startServer('sqlite', { METRICS_PUBLIC: 'on', REDIS_URL: proxy.url('redis'), REDIS_PREFIX: `jr-metrics-redis-${process.pid}` });
  });
  afterAll(async () => {
    await proxy?.restore();
    await s?.stop();
    await proxy?.close();
  });

  const scrape = async (): Promise<Map<string, Family>> => parsePrometheusText(await (await fetch(`${s.url}/metrics`)).text());

  it('shows an outage as redis_up 0 with errors, and the return as a reconnect', async () => {
    const before = await scrape();
    expect(valueOf(before, 'jobrunner_redis_up')).toBe(1);
    expect(valueOf(before, 'jobrunner_redis_reconnects_total')).toBe(0);

    proxy.cut();
    // Down at once; each refused reconnect is an error.
    await waitFor(async () => {
      const m = await scrape();
      return valueOf(m, 'jobrunner_redis_up') === 0 && valueOf(m, 'jobrunner_redis_errors_total') > valueOf(before, 'jobrunner_redis_errors_total');
    });

    await proxy.restore();
    const back = await waitFor(async () => {
      const m = await scrape();
      return valueOf(m, 'jobrunner_redis_up') === 1 && valueOf(m, 'jobrunner_redis_reconnects_total') === 1 && m;
    }, 30_000);
    expect((await s.request('GET', '/health')).body.redis).toBe(true);
    expect(valueOf(back, 'jobrunner_redis_reconnects_total')).toBe(1);
  });
});
