// @apollo/client over WebSocket: GraphQLWsLink on a real graphql-ws client
// (the `ws` package, Authorization in connectionParams): a query, a mutation
// and a jobLog subscription that receives chunks while the job still runs;
// a bad and an expired token surface to the Apollo observer as the socket's
// 4403 close. One provider (SQLite): this is about the client and the
// transport; sessions and revocation are covered on both providers in
// test/foundation.
import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { expiredToken, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { JOB_LOG, linesOf, withTimeout, wsUrl, type Chunk } from '../helpers/ws.js';

type User = Awaited<ReturnType<TestServer['user']>>;

describe('@apollo/client GraphQLWsLink (graphql-ws) on sqlite', () => {
  let s: TestServer;
  let op: User;
  const clients: Client[] = [];

  /** An Apollo client whose only link is GraphQLWsLink over a graphql-ws client that never retries. */
  const apollo = (token: string) => {
    const ws = createClient({
      url: wsUrl(s),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      shouldRetry: () => false,
      connectionParams: { Authorization: `Bearer ${token}` },
    });
    clients.push(ws);
    return new ApolloClient({ link: new GraphQLWsLink(ws), cache: new InMemoryCache() });
  };

  /** Subscribes through Apollo; records each result's data and error, and how it ended. */
  const subscribe = <T>(client: ApolloClient, query: string, variables: Record<string, unknown>, onValue?: (v: T) => void) => {
    const values: T[] = [];
    const errors: unknown[] = [];
    let sub!: { unsubscribe(): void };
    const done = new Promise<'complete' | 'error'>((resolve) => {
      sub = client.subscribe<Record<string, T>>({ query: gql(query), variables, fetchPolicy: 'no-cache' }).subscribe({
        next: (r) => {
          if (r.error) errors.push(r.error);
          if (r.data) {
            const v = Object.values(r.data)[0] as T;
            values.push(v);
            onValue?.(v);
          }
        },
        error: (e) => {
          errors.push(e);
          resolve('error');
        },
        complete: () => resolve(errors.length ? 'error' : 'complete'),
      });
    });
    return { values, errors, done, stop: () => sub.unsubscribe() };
  };

  beforeAll(async () => {
    s = await startServer('sqlite');
    op = await s.user('operator');
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await s?.stop();
  });

  it('query, mutation (submitJob) and a jobLog subscription that gets chunks while the job runs', async () => {
    const client = apollo(op.token);
    const me = await client.query<{ me: { id: string; email: string } }>({ query: gql`{ me { id email } }`, fetchPolicy: 'network-only' });
    expect(me.error).toBeUndefined();
    expect(me.data?.me).toMatchObject({ id: op.id, email: op.email });

    const submitted = await client.mutate<{ submitJob: { id: string; name: string } }>({
      mutation: gql`mutation ($input: SubmitJobInput!) { submitJob(input: $input) { id name } }`,
      variables: { input: { name: 'apollo-ws', command: ['sh', '-c', 'for i in $(seq 1 10); do echo tick-$i; sleep 0.2; done'] } },
    });
    expect(submitted.error).toBeUndefined();
    const id = submitted.data!.submitJob.id;
    expect(submitted.data!.submitJob.name).toBe('apollo-ws');

    // Each chunk's arrival is stamped with the job's status at that moment (read over HTTP).
    const statusAt: Promise<string>[] = [];
    const log = subscribe<Chunk>(client, JOB_LOG, { id }, () =>
      statusAt.push(s.request('GET', `/jobs/${id}`, { token: op.token }).then((r) => r.body.status as string)),
    );
    await waitFor(() => log.values.length > 0, 10_000);
    // Live: the first chunk came before the job ended (it prints for ~2 s).
    expect(await statusAt[0]).toBe('running');
    expect(await withTimeout(log.done, 15_000, 'jobLog')).toBe('complete');
    expect(log.errors).toEqual([]);
    expect(log.values.length).toBeGreaterThan(1);
    expect(linesOf(log.values)).toEqual(Array.from({ length: 10 }, (_v, i) => `tick-${i + 1}`));
  });

  it('a bad token and an expired one: the Apollo observer sees the 4403 close and its reason', async () => {
    const expired = await expiredToken(s, op.token);
    for (const [token, reason] of [
      ['not-a-jwt', 'Forbidden: malformed token'],
      [expired, 'Forbidden: token expired'],
    ]) {
      const client = apollo(token);
      const q = await client.query({ query: gql`{ me { id } }`, fetchPolicy: 'network-only', errorPolicy: 'all' });
      expect(q.data).toBeUndefined();
      expect((q.error as Error | undefined)?.message, reason).toBe(`Socket closed with event 4403 ${reason}`);

      const sub = subscribe(apollo(token), 'subscription { jobEvents { id } }', {});
      expect(await withTimeout(sub.done, 10_000, reason)).toBe('error');
      expect(sub.values).toEqual([]);
      expect(sub.errors.map((e) => (e as Error).message)).toEqual([`Socket closed with event 4403 ${reason}`]);
    }
  });
});
