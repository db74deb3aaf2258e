// Resource hygiene of the WebSocket transport (SQLite only): no leaked bus
// listeners after many connect/subscribe/disconnect cycles, the per-user
// connection limit (4429), the per-connection subscription limit
// (RATE_LIMITED), and re-authorisation of every subscribe.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit } from '../helpers/jobs.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import WebSocket from 'ws';
import { JOB_EVENTS, JOB_LOG, JOB_UPDATED, track, withTimeout, wsClient, wsUrl, type WsClient } from '../helpers/ws.js';

describe('live limits on sqlite', () => {
  let s: TestServer;
  let op: Awaited<ReturnType<TestServer['user']>>;
  let longJob: { id: string };
  let baseline: number;

  beforeAll(async () => {
    s = await startServer('sqlite');
    op = await s.user('operator');
    longJob = await submit(s, op.token, { command: ['sh', '-c', 'echo started; sleep 300'] });
    baseline = s.app.bus.listenerCount();
  });
  afterAll(async () => {
    if (longJob) await s.request('POST', `/jobs/${longJob.id}/cancel`, { token: op.token });
    await s?.stop();
  });

  it('1,000 connect/subscribe/disconnect cycles leave no bus listener behind', async () => {
    // Wait for the long job's first output so jobLog subscribers get a first chunk.
    await waitFor(async () => {
      const res = await fetch(`${s.api}/jobs/${longJob.id}/logs/stream`, { headers: { authorization: `Bearer ${op.token}` }, signal: AbortSignal.timeout(1000) }).catch(() => null);
      if (!res) return false;
      const reader = res.body!.getReader();
      const first = await reader.read().catch(() => ({ value: undefined }));
      await reader.cancel().catch(() => {});
      return Boolean(first.value?.length);
    });
    await waitFor(() => s.app.bus.listenerCount() === baseline);

    let peak = baseline;
    const cycle = async (i: number) => {
      const c = wsClient(s, op.token);
      try {
        switch (i % 4) {
          case 0: {
            const t = track(c.client, JOB_LOG, { id: longJob.id });
            await waitFor(() => t.values.length > 0, 20_000, 5);
            break;
          }
          case 1: {
            const t = track(c.client, JOB_UPDATED, { id: longJob.id });
            await waitFor(() => t.values.length > 0, 20_000, 5);
            break;
          }
          case 2: {
            // Leave while the subscribe may still be in flight on the server.
            track(c.client, JOB_EVENTS, {});
            await new Promise((r) => setTimeout(r, i % 20));
            break;
          }
          default: {
            // Complete from the client side first, then leave.
            const t = track(c.client, JOB_LOG, { id: longJob.id });
            await waitFor(() => t.values.length > 0, 20_000, 5);
            t.stop();
          }
        }
        peak = Math.max(peak, s.app.bus.listenerCount());
      } finally {
        await c.dispose();
      }
    };
    const N = 1000;
    let next = 0;
    await Promise.all(Array.from({ length: 20 }, async () => {
      while (next < N) await cycle(next++);
    }));
    expect(peak).toBeGreaterThan(baseline);
    await waitFor(() => s.app.bus.listenerCount() === baseline, 20_000);
    expect(s.app.bus.listenerCount()).toBe(baseline);
  }, 240_000);

  it('past the per-user connection limit (50) the socket closes with 4429; others are not affected', async () => {
    const user = await s.user('viewer');
    const clients: WsClient[] = [];
    try {
      for (let i = 0; i < 50; i++) clients.push(wsClient(s, user.token));
      // All 50 are accepted: each holds a live subscription.
      const before = s.app.bus.listenerCount();
      const probes = clients.map((c) => track(c.client, 'subscription { jobEvents { id } }', {}));
      await waitFor(() => s.app.bus.listenerCount() === before + 50);
      probes.forEach((p) => p.stop());

      const extra = wsClient(s, user.token);
      const closed = await withTimeout(extra.closed, 10_000, '51st connection');
      expect(closed.code).toBe(4429);
      expect(closed.reason).toMatch(/Too many connections/);
      // Another user is not limited by this one's connections.
      const other = wsClient(s, op.token);
      const t = track(other.client, JOB_UPDATED, { id: longJob.id });
      await waitFor(() => t.values.length > 0);
      await other.dispose();
      // Freeing one makes room again.
      await clients.pop()!.dispose();
      await waitFor(async () => {
        const again = wsClient(s, user.token);
        const probe = track(again.client, JOB_EVENTS, {});
        const outcome = await Promise.race([again.closed.then(() => 'closed'), waitFor(() => s.app.bus.listenerCount() > before, 3000, 5).then(() => 'ok', () => 'slow')]);
        probe.stop();
        if (outcome === 'ok') clients.push(again);
        else await again.dispose();
        return outcome === 'ok';
      });
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('past 100 subscriptions on one connection the next one gets a RATE_LIMITED error', async () => {
    const c = wsClient(s, op.token);
    const before = s.app.bus.listenerCount();
    const subs = Array.from({ length: 100 }, () => track(c.client, JOB_EVENTS, {}));
    await waitFor(() => s.app.bus.listenerCount() === before + 100);
    const extra = track(c.client, JOB_EVENTS, {});
    await withTimeout(extra.done, 10_000, '101st subscription');
    expect(extra.errors.map((e) => e.extensions?.code)).toEqual(['RATE_LIMITED']);
    expect(extra.errors[0].message).toMatch(/Too many subscriptions/);
    // Completing one frees its place.
    subs[0]!.stop();
    await waitFor(() => s.app.bus.listenerCount() === before + 99);
    const again = track(c.client, JOB_EVENTS, {});
    await waitFor(() => s.app.bus.listenerCount() === before + 100);
    expect(again.errors).toEqual([]);
    await c.dispose();
    await waitFor(() => s.app.bus.listenerCount() === before);
  });

  it('WebSocket upgrades are only taken on /graphql', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}/api/v1/jobs`, 'graphql-transport-ws');
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('upgraded on a path other than /graphql')));
      ws.on('error', () => {});
    });
    expect(status).toBe(404);
    // A client without the graphql-transport-ws subprotocol is closed with 4406.
    const code = await new Promise<number>((resolve) => {
      const ws = new WebSocket(wsUrl(s));
      ws.on('close', (c) => resolve(c));
      ws.on('error', () => {});
    });
    expect(code).toBe(4406);
  });

  it('a deactivated user\'s socket closes with 4403, and their token opens no other', async () => {
    const user = await s.user('operator');
    const job = await submit(s, user.token, { command: ['true'] });
    const c = wsClient(s, user.token);
    const ok = track(c.client, JOB_UPDATED, { id: job.id });
    expect(await withTimeout(ok.done, 30_000, 'first')).toBe('complete');
    const res = await s.request('PATCH', `/users/${user.id}`, { token: s.adminToken, body: { is_active: false } });
    expect(res.status).toBe(200);
    expect(await withTimeout(c.closed, 10_000, 'close on deactivation')).toEqual({ code: 4403, reason: 'Forbidden: token revoked' });
    const again = wsClient(s, user.token);
    expect(await withTimeout(again.closed, 10_000, 'refused')).toEqual({ code: 4403, reason: 'Forbidden: token revoked' });
    await c.dispose();
  });
});
