// The legacy `graphql-ws` subprotocol (subscriptions-transport-ws, as GraphQL
// Playground speaks it), with the real old client: query, mutation and a live
// jobLog; Authorization in any letter case or inside `headers`; refused
// tokens; a deactivated user's socket; and raw sockets for what the client
// never sends (start before connection_init, oversized messages, unknown
// subprotocols). One provider: this is about the transport, and the
// database-dependent parts (sessions, revocation) are covered on both
// providers in test/foundation.
import { SubscriptionClient } from 'subscriptions-transport-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { submit } from '../helpers/jobs.js';
import { expiredToken, startServer, type TestServer } from '../helpers/server.js';
import { JOB_LOG, linesOf, withTimeout, wsUrl, type Chunk, type CloseInfo } from '../helpers/ws.js';

type User = Awaited<ReturnType<TestServer['user']>>;

interface Legacy {
  client: SubscriptionClient;
  closed: Promise<CloseInfo>;
  /** The connection_error payload, if the server refused connection_init. */
  refused: Promise<{ message: string }>;
  /** Resolves at connection_ack. */
  acked: Promise<void>;
}

interface Run {
  values: any[];
  errors: any[];
  done: Promise<'complete' | 'error'>;
  stop(): void;
}

/** Runs one operation on the old client, recording what arrives. */
function run(client: SubscriptionClient, query: string, variables: Record<string, unknown> = {}): Run {
  const values: any[] = [];
  const errors: any[] = [];
  let sub!: { unsubscribe(): void };
  const done = new Promise<'complete' | 'error'>((resolve) => {
    sub = client.request({ query, variables }).subscribe({
      next: (r) => {
        if (r.errors) errors.push(...r.errors);
        if (r.data) values.push(Object.values(r.data)[0]);
      },
      error: (e) => {
        errors.push(e);
        resolve('error');
      },
      complete: () => resolve('complete'),
    });
  });
  return { values, errors, done, stop: () => sub.unsubscribe() };
}

describe('legacy graphql-ws protocol (subscriptions-transport-ws) on sqlite', () => {
  let s: TestServer;
  let op: User;
  const open: Legacy[] = [];

  const connect = (connectionParams: Record<string, unknown>): Legacy => {
    let refuse!: (p: { message: string }) => void;
    const refused = new Promise<{ message: string }>((r) => (refuse = r));
    let ack!: () => void;
    const acked = new Promise<void>((r) => (ack = r));
    const client = new SubscriptionClient(
      wsUrl(s),
      { reconnect: false, connectionParams, connectionCallback: (err) => (err ? refuse(err as unknown as { message: string }) : ack()) },
      WebSocket,
    );
    // The client keeps its socket here and reports no close code.
    const raw = (client as unknown as { client: WebSocket }).client;
    const closed = new Promise<CloseInfo>((r) => raw.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    const c = { client, closed, refused, acked };
    open.push(c);
    return c;
  };
  const bearer = (token: string) => `Bearer ${token}`;

  /** A raw socket offering `protocols`; resolves once open, with every message and the close recorded. */
  const rawSocket = async (protocols: string[]) => {
    const ws = new WebSocket(wsUrl(s), protocols);
    const messages: any[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(String(d))));
    const closed = new Promise<CloseInfo>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return { ws, messages, closed };
  };

  beforeAll(async () => {
    s = await startServer('sqlite');
    op = await s.user('operator');
  });
  afterAll(async () => {
    for (const c of open) c.client.close();
    await s?.stop();
  });

  it('query, mutation and a live jobLog subscription, Authorization capitalised', async () => {
    const c = connect({ Authorization: bearer(op.token) });
    await withTimeout(c.acked, 10_000, 'connection_ack');

    const me = run(c.client, '{ me { id email } }');
    expect(await withTimeout(me.done, 10_000, 'query')).toBe('complete');
    expect(me.values).toEqual([{ id: op.id, email: op.email }]);

    const submitted = run(c.client, 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { id status } }', {
      input: { name: 'legacy', command: ['sh', '-c', 'for i in $(seq 1 50); do echo line $i; sleep 0.01; done'] },
    });
    expect(await withTimeout(submitted.done, 10_000, 'mutation')).toBe('complete');
    expect(submitted.errors).toEqual([]);
    const jobId = submitted.values[0].id as string;

    const log = run(c.client, JOB_LOG, { id: jobId });
    expect(await withTimeout(log.done, 20_000, 'jobLog')).toBe('complete');
    expect(log.errors).toEqual([]);
    expect(linesOf(log.values as Chunk[])).toEqual(Array.from({ length: 50 }, (_v, i) => `line ${i + 1}`));
    expect((log.values as Chunk[]).map((v) => v.seq)).toEqual(log.values.map((_v, i) => i + 1));
  });

  it('Authorization in upper case and inside a `headers` object', async () => {
    for (const params of [{ AUTHORIZATION: bearer(op.token) }, { headers: { Authorization: bearer(op.token) } }]) {
      const c = connect(params);
      const me = run(c.client, '{ me { id } }');
      expect(await withTimeout(me.done, 10_000, JSON.stringify(Object.keys(params)))).toBe('complete');
      expect(me.values).toEqual([{ id: op.id }]);
    }
  });

  it('no token, a bad token, an expired token: connection_error saying why, then close 4403', async () => {
    const expired = await expiredToken(s, op.token);
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'Forbidden'],
      [{ authorization: 'Bearer not-a-jwt' }, 'Forbidden: malformed token'],
      [{ authorization: bearer(expired) }, 'Forbidden: token expired'],
    ];
    for (const [params, reason] of cases) {
      const c = connect(params);
      expect(await withTimeout(c.refused, 10_000, `connection_error for ${reason}`)).toEqual({ message: reason });
      expect(await withTimeout(c.closed, 10_000, `close for ${reason}`)).toEqual({ code: 4403, reason });
    }
  });

  it('a deactivated user\'s socket closes with 4403', async () => {
    const u = await s.user('operator');
    const c = connect({ authorization: bearer(u.token) });
    const job = await submit(s, u.token, { command: ['sleep', '30'] });
    const updates = run(c.client, 'subscription ($id: ID!) { jobUpdated(id: $id) { id status } }', { id: job.id });
    await withTimeout(
      (async () => {
        while (updates.values.length === 0) await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'first jobUpdated',
    );
    const res = await s.request('PATCH', `/users/${u.id}`, { token: s.adminToken, body: { is_active: false } });
    expect(res.status).toBe(200);
    const closed = await withTimeout(c.closed, 10_000, 'close after deactivation');
    expect(closed.code).toBe(4403);
    expect(closed.reason).toMatch(/^Forbidden/);
    await s.request('POST', `/jobs/${job.id}/cancel`, { token: s.adminToken });
  });

  it('keep-alive: ka right after connection_ack', async () => {
    const { ws, messages } = await rawSocket(['graphql-ws']);
    expect(ws.protocol).toBe('graphql-ws');
    ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: bearer(op.token) } }));
    await withTimeout(
      (async () => {
        while (messages.length < 2) await new Promise((r) => setTimeout(r, 10));
      })(),
      10_000,
      'ack and ka',
    );
    expect(messages.slice(0, 2)).toEqual([{ type: 'connection_ack' }, { type: 'ka' }]);
    ws.close();
  });

  it('start before connection_init: an error for that operation, the socket stays open', async () => {
    const { ws, messages } = await rawSocket(['graphql-ws']);
    ws.send(JSON.stringify({ type: 'start', id: '1', payload: { query: '{ me { id } }' } }));
    await withTimeout(
      (async () => {
        while (messages.length < 1) await new Promise((r) => setTimeout(r, 10));
      })(),
      10_000,
      'error',
    );
    expect(messages[0]).toEqual({ type: 'error', id: '1', payload: [{ message: 'Not initialised: send connection_init first', extensions: { code: 'UNAUTHENTICATED' } }] });
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });

  it('a message over the size limit closes the socket with 1009 and a reason', async () => {
    const { ws, closed } = await rawSocket(['graphql-ws']);
    ws.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(1024 * 1024) } }));
    expect(await withTimeout(closed, 10_000, 'close')).toEqual({ code: 1009, reason: 'Message too big: at most 1048576 bytes' });
  });

  it('an unknown subprotocol, or none: close 4406 naming the two the server speaks', async () => {
    for (const protocols of [['graphql-sse-nonsense'], []]) {
      const { closed } = await rawSocket(protocols);
      expect(await withTimeout(closed, 10_000, 'close')).toEqual({ code: 4406, reason: 'Subprotocol not acceptable: offer graphql-transport-ws or graphql-ws' });
    }
  });
});
