// graphql-transport-ws (graphql-ws) with the real graphql-ws client: query,
// mutation and a live jobLog; Authorization in any letter case or inside
// `headers`; refused tokens; the protocol picked when a client offers both;
// oversized messages; and a reader that stops reading for a while still gets
// every byte (the server stops pulling instead of queueing). One provider:
// this is about the transport; sessions and revocation are covered on both
// providers in test/foundation.
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { getLogs, submit, waitTerminal } from '../helpers/jobs.js';
import { expiredToken, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { JOB_LOG, linesOf, track, withTimeout, wsClient, wsUrl, type Chunk, type CloseInfo } from '../helpers/ws.js';

type User = Awaited<ReturnType<TestServer['user']>>;

describe('graphql-transport-ws (graphql-ws) on sqlite', () => {
  let s: TestServer;
  let op: User;
  const clients: Client[] = [];

  /** A graphql-ws client with these connection params that never retries; its first close. */
  const connect = (connectionParams: Record<string, unknown>) => {
    let onClosed!: (c: CloseInfo) => void;
    const closed = new Promise<CloseInfo>((r) => (onClosed = r));
    const client = createClient({
      url: wsUrl(s),
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      onNonLazyError: () => {},
      connectionParams,
      on: { closed: (e) => onClosed({ code: (e as CloseInfo).code, reason: String((e as CloseInfo).reason) }) },
    });
    clients.push(client);
    return { client, closed };
  };
  const one = async (client: Client, query: string, variables: Record<string, unknown> = {}) => {
    const t = track(client, query, variables);
    expect(await withTimeout(t.done, 15_000, query.slice(0, 40))).toBe('complete');
    expect(t.errors).toEqual([]);
    return t.values[0];
  };

  beforeAll(async () => {
    s = await startServer('sqlite');
    op = await s.user('operator');
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await s?.stop();
  });

  it('query, mutation and a live jobLog subscription', async () => {
    const { client } = connect({ authorization: `Bearer ${op.token}` });
    expect(await one(client, '{ me { id email } }')).toEqual({ id: op.id, email: op.email });
    const job = await one(client, 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { id } }', {
      input: { name: 'ws', command: ['sh', '-c', 'for i in $(seq 1 50); do echo line $i; sleep 0.01; done'] },
    });
    const log = track<Chunk>(client, JOB_LOG, { id: job.id });
    expect(await withTimeout(log.done, 20_000, 'jobLog')).toBe('complete');
    expect(log.errors).toEqual([]);
    expect(linesOf(log.values)).toEqual(Array.from({ length: 50 }, (_v, i) => `line ${i + 1}`));
  });

  it('Authorization capitalised, in upper case, and inside a `headers` object', async () => {
    const auth = `Bearer ${op.token}`;
    for (const params of [{ Authorization: auth }, { AUTHORIZATION: auth }, { headers: { Authorization: auth } }, { headers: { authorization: auth } }]) {
      const { client } = connect(params);
      expect(await one(client, '{ me { id } }')).toEqual({ id: op.id });
    }
  });

  it('a bad token and an expired one in `headers`: close 4403 saying why', async () => {
    const expired = await expiredToken(s, op.token);
    for (const [token, reason] of [
      ['not-a-jwt', 'Forbidden: malformed token'],
      [expired, 'Forbidden: token expired'],
    ]) {
      const { closed } = connect({ headers: { Authorization: `Bearer ${token}` } });
      expect(await withTimeout(closed, 10_000, reason)).toEqual({ code: 4403, reason });
    }
  });

  it('a client offering both protocols gets graphql-transport-ws', async () => {
    const ws = new WebSocket(wsUrl(s), ['graphql-ws', 'graphql-transport-ws']);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    expect(ws.protocol).toBe('graphql-transport-ws');
    ws.close();
  });

  it('a message over the size limit closes the socket with 1009 and a reason', async () => {
    const { closed } = connect({ authorization: `Bearer ${op.token}`, pad: 'x'.repeat(1024 * 1024) });
    expect(await withTimeout(closed, 10_000, 'close')).toEqual({ code: 1009, reason: 'Message too big: at most 1048576 bytes' });
  });

  it('a reader that stops reading while a job writes 8 MB gets every byte once it reads on', async () => {
    const c = wsClient(s, op.token);
    const job = await submit(s, op.token, { command: ['sh', '-c', 'echo ready; sleep 0.3; head -c 6000000 /dev/urandom | base64'] });
    let bytes = 0;
    const t = track<Chunk>(c.client, JOB_LOG, { id: job.id }, (chunk, all) => {
      bytes += chunk.data.length;
      all.length = 0;
    });
    await waitFor(() => bytes > 0);
    const socket = await c.socket;
    socket.pause();
    await waitTerminal(s, op.token, job.id);
    socket.resume();
    expect(await withTimeout(t.done, 30_000, 'jobLog')).toBe('complete');
    expect(t.errors).toEqual([]);
    expect(bytes).toBe((await getLogs(s, op.token, job.id)).stdout.length);
    await c.dispose();
  });
});
