// Limits that bound what one GraphQL or REST request may cost, each refused
// with a 4xx and a message before anything runs: list costs by their real
// bounds (a batch's 1000 jobs, a log's MAX_LOG_BYTES), aliases, batched
// operations sharing one budget, the parser's token and nesting bounds, and
// deep JSON in GraphQL variables and REST bodies. Nothing reaches the log as
// a stack trace (the logger's output is captured at debug level) and the
// server's memory stays flat. Transport behaviour: one provider (SQLite).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

/** JSON text nesting `depth` objects: built as text, since JSON.stringify itself overflows the stack this deep. */
const deepJson = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

describe('request limits (GraphQL and REST)', () => {
  let s: TestServer;
  const logged: string[] = [];
  const writes: { stream: NodeJS.WriteStream; original: NodeJS.WriteStream['write'] }[] = [];

  beforeAll(async () => {
    s = await startServer('sqlite', { LOG_LEVEL: 'debug' });
    for (const stream of [process.stdout, process.stderr]) {
      const original = stream.write;
      writes.push({ stream, original });
      stream.write = ((chunk: unknown, ...rest: unknown[]) => {
        logged.push(String(chunk));
        return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      }) as NodeJS.WriteStream['write'];
    }
  });
  afterAll(async () => {
    for (const w of writes) w.stream.write = w.original;
    await s?.stop();
  });

  const post = (body: string, token: string | null = s.adminToken, path = '/graphql') =>
    fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body });
  const gql = (query: string, variables?: Record<string, unknown>, token?: string | null) => post(JSON.stringify({ query, variables }), token);

  /** Runs `send`, expects a 4xx whose message matches, no stack trace logged meanwhile, and RSS grown by less than 64 MB. */
  async function refused(send: () => Promise<Response>, status: number, message: RegExp) {
    const from = logged.length;
    const rss = process.memoryUsage().rss;
    const res = await send();
    const text = await res.text();
    expect(res.status, text).toBe(status);
    expect(text).toMatch(message);
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
    const lines = logged.slice(from).join('');
    expect(lines).not.toMatch(/stack|RangeError|    at /);
    expect(lines.split('\n').filter(Boolean).length).toBeLessThanOrEqual(1);
    return text;
  }

  it('batches(first:1000){nodes{jobs{logs{stdout}}}}: a batch counts 1000 jobs and a log stream MAX_LOG_BYTES', async () => {
    await refused(() => gql('{ batches(first: 1000) { nodes { jobs { logs { stdout } } } } }'), 400, /Query complexity \d+ exceeds the limit of 20000/);
    await refused(() => gql('{ batches { nodes { id jobs { id env } } } }'), 400, /complexity/);
    await refused(() => gql('{ jobs(first: 200) { nodes { logs { stdout stderr } } } }'), 400, /complexity/);
    // What stays allowed: one job's logs, a few batches with their jobs, a full page of jobs.
    for (const q of ['{ jobs(first: 10) { nodes { id logs { stdout } } } }', '{ batches(first: 5) { nodes { id jobs { id env } } } }', '{ jobs(first: 1000) { nodes { id name status command env payload createdAt } } }']) {
      const res = await gql(q);
      expect(res.status, q).toBe(200);
      expect(((await res.json()) as { errors?: unknown[] }).errors, q).toBeUndefined();
    }
  });

  it('aliases count as the fields they repeat', async () => {
    const page = 'jobs(first: 1000) { nodes { id name status command env payload createdAt } }';
    const one = await gql(`{ a: ${page} }`);
    expect(one.status).toBe(200);
    await refused(() => gql(`{ ${Array.from({ length: 7 }, (_v, i) => `a${i}: ${page}`).join(' ')} }`), 400, /Query complexity \d+ exceeds the limit/);
  });

  it('batched operations share one budget, and a batch holds at most 5', async () => {
    const page = { query: '{ jobs(first: 1000) { nodes { id name status command env payload createdAt } } }' };
    const two = await post(JSON.stringify([page, page]));
    expect(two.status).toBe(200);
    expect(((await two.json()) as unknown[]).length).toBe(2);
    await refused(() => post(JSON.stringify([page, page, page, page])), 400, /The operations of this batch cost \d+ together, over the limit of 20000/);
    await refused(() => post(JSON.stringify(Array.from({ length: 6 }, () => ({ query: '{ health { status } }' })))), 413, /Batching is limited to 5 operations/);
  });

  it('the parser: at most 5000 tokens, at most 64 levels of nesting', async () => {
    await refused(() => gql(`{ ${'health { status } '.repeat(2000)} }`, undefined, null), 400, /more than 5000 tokens/);
    const literal = (d: number) => `mutation { submitJob(input: { name: "x", command: ["true"], payload: { a: ${'['.repeat(d)}${']'.repeat(d)} } }) { id } }`;
    await refused(() => gql(literal(20_000), undefined, null), 400, /nests more than 64 levels/);
    await refused(() => gql(literal(20_000)), 400, /nests more than 64 levels/);
    await refused(() => fetch(`${s.url}/graphql?query=${encodeURIComponent(`{ health ${'{'.repeat(100)} }`)}`), 400, /nests more than 64 levels/);
  });

  it('deep JSON: GraphQL variables and REST bodies nested 5000 levels', async () => {
    const mutation = 'mutation($p: JSONObject) { submitJob(input: { name: "x", command: ["true"], payload: $p }) { id } }';
    await refused(() => post(`{"query":${JSON.stringify(mutation)},"variables":{"p":${deepJson(5000)}}}`), 400, /JSON nests more than 64 levels/);
    await refused(() => fetch(`${s.url}/graphql?query=${encodeURIComponent('{ health { status } }')}&variables=${encodeURIComponent(`{"p":${deepJson(500)}}`)}`), 400, /JSON nests more than 64 levels/);
    const text = await refused(() => post(`{"name":"x","command":["true"],"payload":${deepJson(5000)}}`, s.adminToken, '/api/v1/jobs'), 422, /JSON nests more than 64 levels/);
    expect(JSON.parse(text).detail[0].loc).toEqual(['body']);
    // A reasonable depth still goes through.
    const ok = await post(`{"name":"x","command":["true"],"payload":${deepJson(20)}}`, s.adminToken, '/api/v1/jobs');
    expect(ok.status).toBe(202);
  });
});
