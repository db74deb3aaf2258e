// The real GraphQL client packages over HTTP against a started server, with
// their default settings and only an Authorization header: graphql-sse
// (subscriptions over SSE), @apollo/client (HttpLink with PersistedQueryLink,
// BatchHttpLink), @urql/core (default exchanges: GET queries) and
// graphql-request (GET and POST). Query, mutation, a subscription with live
// data, a bad token and an expired token; CSRF and CORS rules as the README
// states them. Transport behaviour: one provider (SQLite) is enough.
import { createHash } from 'node:crypto';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { Client, cacheExchange, fetchExchange } from '@urql/core';
import { GraphQLClient } from 'graphql-request';
import { createClient } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expiredToken, startServer, type TestServer } from '../helpers/server.js';

const SUBMIT = 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { id name status } }';
const JOB_LOG = 'subscription ($id: ID!) { jobLog(id: $id) { seq stream data } }';
const COUNT = ['sh', '-c', 'for i in $(seq 1 50); do echo line$i; sleep 0.01; done'];

describe('GraphQL clients over HTTP', () => {
  let s: TestServer;
  let token: string;
  let expired: string;
  let endpoint: string;
  const auth = (t: string) => ({ Authorization: `Bearer ${t}` });

  beforeAll(async () => {
    s = await startServer('sqlite');
    endpoint = `${s.url}/graphql`;
    token = (await s.user('operator')).token;
    expired = await expiredToken(s, token);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('graphql-sse: a live jobLog subscription; bad and expired tokens get a GraphQL error, not a 500', async () => {
    const client = createClient({ url: endpoint, headers: auth(token), retryAttempts: 0 });
    const job = (await new GraphQLClient(endpoint, { headers: auth(token) }).request<{ submitJob: { id: string } }>(SUBMIT, { input: { name: 'sse', command: COUNT } })).submitJob;
    let text = '';
    let chunks = 0;
    for await (const result of client.iterate<{ jobLog: { data: string } }>({ query: JOB_LOG, variables: { id: job.id } })) {
      expect(result.errors).toBeUndefined();
      text += result.data!.jobLog.data;
      chunks++;
    }
    expect(text.trim().split('\n')).toEqual(Array.from({ length: 50 }, (_v, i) => `line${i + 1}`));
    expect(chunks).toBeGreaterThan(1);
    client.dispose();

    for (const [bad, why] of [['not-a-jwt', 'malformed token'], [expired, 'token expired']] as const) {
      const c = createClient({ url: endpoint, headers: auth(bad), retryAttempts: 0 });
      const results: unknown[] = [];
      for await (const r of c.iterate({ query: JOB_LOG, variables: { id: job.id } })) results.push(r);
      expect(results, why).toMatchObject([{ errors: [{ message: `Not authenticated: ${why}`, extensions: { code: 'UNAUTHENTICATED' } }] }]);
      c.dispose();
    }
  });

  it('curl-like SSE subscription (GET, Accept: text/event-stream): 200 and an UNAUTHENTICATED event without a token', async () => {
    const url = `${endpoint}?query=${encodeURIComponent('subscription { jobUpdated(id: "nope") { id } }')}`;
    const res = await fetch(url, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/event: next\ndata: .*"UNAUTHENTICATED"[\s\S]*event: complete/);
  });

  it('@apollo/client: HttpLink behind PersistedQueryLink (hash first, then the query once), mutation and query', async () => {
    const sent: { query: boolean; hash: boolean }[] = [];
    const spy: typeof fetch = async (input, init) => {
      const body = JSON.parse(String(init?.body)) as { query?: string; extensions?: { persistedQuery?: unknown } };
      sent.push({ query: typeof body.query === 'string', hash: !!body.extensions?.persistedQuery });
      return fetch(input, init);
    };
    const sha256 = (q: string) => createHash('sha256').update(q).digest('hex');
    const link = ApolloLink.from([new PersistedQueryLink({ sha256 }), new HttpLink({ uri: endpoint, headers: auth(token), fetch: spy })]);
    const apollo = new ApolloClient({ link, cache: new InMemoryCache() });
    const created = await apollo.mutate<{ submitJob: { id: string } }>({ mutation: gql(SUBMIT), variables: { input: { name: 'apollo', command: ['true'] } } });
    expect(created.data!.submitJob.id).toBeTruthy();
    const q = gql`query One($id: ID!) { job(id: $id) { id name } }`;
    for (let i = 0; i < 2; i++) {
      const r = await apollo.query<{ job: { name: string } }>({ query: q, variables: { id: created.data!.submitJob.id }, fetchPolicy: 'network-only' });
      expect(r.data!.job.name).toBe('apollo');
    }
    // Mutation: hash, then hash + query; first query: the same; second query: the hash alone.
    expect(sent).toEqual([
      { query: false, hash: true }, { query: true, hash: true },
      { query: false, hash: true }, { query: true, hash: true },
      { query: false, hash: true },
    ]);
    const bad = new ApolloClient({ link: new HttpLink({ uri: endpoint, headers: auth(expired) }), cache: new InMemoryCache() });
    const refused = await bad.query({ query: gql`{ jobStats { total } }`, errorPolicy: 'all' });
    expect(refused.error?.message).toMatch(/Not authenticated: token expired/);
  });

  it('@apollo/client BatchHttpLink: several operations in one request', async () => {
    const bodies: unknown[] = [];
    const spy: typeof fetch = async (input, init) => {
      bodies.push(JSON.parse(String(init?.body)));
      return fetch(input, init);
    };
    const apollo = new ApolloClient({ link: new BatchHttpLink({ uri: endpoint, headers: auth(token), batchMax: 5, batchInterval: 20, fetch: spy }), cache: new InMemoryCache() });
    const [a, b] = await Promise.all([
      apollo.query<{ health: { status: string } }>({ query: gql`{ health { status } }` }),
      apollo.query<{ jobStats: { total: number } }>({ query: gql`{ jobStats { total } }` }),
    ]);
    expect(a.data!.health.status).toBe('ok');
    expect(b.data!.jobStats.total).toBeGreaterThanOrEqual(0);
    expect(bodies.length).toBe(1);
    expect(Array.isArray(bodies[0]) && (bodies[0] as unknown[]).length).toBe(2);
  });

  it('@urql/core with default exchanges: queries go out as GET and need no CSRF header; mutations POST', async () => {
    const methods: string[] = [];
    const spy: typeof fetch = async (input, init) => {
      methods.push(init?.method ?? 'GET');
      return fetch(input, init);
    };
    const urql = new Client({ url: endpoint, exchanges: [cacheExchange, fetchExchange], fetchOptions: { headers: auth(token) }, fetch: spy });
    const job = await urql.mutation(SUBMIT, { input: { name: 'urql', command: ['true'] } }).toPromise();
    expect(job.error).toBeUndefined();
    const read = await urql.query('query ($id: ID!) { job(id: $id) { name } }', { id: job.data.submitJob.id }).toPromise();
    expect(read.error).toBeUndefined();
    expect(read.data.job.name).toBe('urql');
    expect(methods).toEqual(['POST', 'GET']);
    const bad = new Client({ url: endpoint, exchanges: [fetchExchange], fetchOptions: { headers: auth('not-a-jwt') } });
    const refused = await bad.query('{ jobStats { total } }', {}).toPromise();
    expect(refused.error?.graphQLErrors[0]?.extensions.code).toBe('UNAUTHENTICATED');
  });

  it('graphql-request: GET and POST queries, a mutation, bad and expired tokens', async () => {
    const post = new GraphQLClient(endpoint, { headers: auth(token) });
    const get = new GraphQLClient(endpoint, { headers: auth(token), method: 'GET' });
    const created = await post.request<{ submitJob: { id: string } }>(SUBMIT, { input: { name: 'gr', command: ['true'] } });
    for (const c of [get, post]) {
      const r = await c.request<{ job: { name: string } }>('query ($id: ID!) { job(id: $id) { name } }', { id: created.submitJob.id });
      expect(r.job.name).toBe('gr');
    }
    for (const [bad, why] of [['not-a-jwt', 'malformed token'], [expired, 'token expired']] as const) {
      for (const method of ['GET', 'POST'] as const) {
        const c = new GraphQLClient(endpoint, { headers: auth(bad), method });
        await expect(c.request('{ jobStats { total } }'), `${method} ${why}`).rejects.toThrow(`Not authenticated: ${why}`);
      }
    }
  });

  it('CSRF: GET and JSON POST need no extra header; form and text POSTs are refused (415)', async () => {
    const q = '{ health { status } }';
    expect((await fetch(`${endpoint}?query=${encodeURIComponent(q)}`)).status).toBe(200);
    expect((await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: q }) })).status).toBe(200);
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
      const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': type }, body: `query=${encodeURIComponent(q)}` });
      expect(res.status, type).toBe(415);
    }
    // No mutation over GET (yoga's rule, kept).
    const m = await fetch(`${endpoint}?query=${encodeURIComponent('mutation { purgeJob(id: "x") }')}`, { headers: auth(token) });
    expect(m.status).toBe(405);
  });

  it('CORS: a page on another origin may preflight and query with a bearer token; credentials only for CORS_ORIGINS', async () => {
    const origin = 'http://playground.example:3000';
    const pre = await fetch(endpoint, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-apollo-tracing' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    for (const h of ['authorization', 'content-type', 'x-apollo-tracing']) expect(pre.headers.get('access-control-allow-headers')).toContain(h);
    const res = await fetch(endpoint, { method: 'POST', headers: { origin, 'content-type': 'application/json', ...auth(token) }, body: JSON.stringify({ query: '{ __schema { queryType { name } } jobStats { total } }' }) });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(((await res.json()) as { data: { __schema: { queryType: { name: string } } } }).data.__schema.queryType.name).toBe('Query');

    const trusted = await startServer('sqlite', { CORS_ORIGINS: origin });
    try {
      const r = await fetch(`${trusted.url}/graphql`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
      expect(r.headers.get('access-control-allow-origin')).toBe(origin);
      expect(r.headers.get('access-control-allow-credentials')).toBe('true');
      const other = await fetch(`${trusted.url}/graphql`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
      expect(other.headers.get('access-control-allow-origin')).toBe('*');
      expect(other.headers.get('access-control-allow-credentials')).toBeNull();
    } finally {
      await trusted.stop();
    }
  });
});
