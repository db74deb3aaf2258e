// List ergonomics on GET /jobs and GraphQL jobs(...): order=desc (newest
// first), several statuses (comma-separated or repeated), name substring,
// created bounds, owner_id (admins and viewers: anyone's; an operator only
// ever sees their own), cursor paging in both orders and GraphQL's backward
// paging (last/before), and 422s naming the field.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { runJob, type JobRead } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';

type User = Awaited<ReturnType<TestServer['user']>>;

describe.each(PROVIDERS)('listing jobs on %s', (provider) => {
  let s: TestServer;
  let a: User;
  let b: User;
  let viewer: User;
  /** a's jobs in creation order. */
  let mine: JobRead[] = [];
  let theirs: JobRead;

  const list = async (token: string, query = ''): Promise<JobRead[]> => {
    const res = await s.request('GET', `/jobs?${query}`, { token });
    expect(res.status, res.text).toBe(200);
    return res.body;
  };
  const ids = (jobs: { id: string }[]) => jobs.map((j) => j.id);

  beforeAll(async () => {
    s = await startServer(provider);
    [a, b, viewer] = await Promise.all([s.user('operator'), s.user('operator'), s.user('viewer')]);
    for (const [name, command] of [['Build-alpha', ['true']], ['build-beta', ['false']], ['deploy', ['true']], ['build-gamma', ['sh', '-c', 'exit 2']], ['lint', ['true']]] as const) {
      mine.push((await runJob(s, a.token, { name, command: [...command] })).job);
      await new Promise((r) => setTimeout(r, 5));
    }
    mine = await list(a.token);
    theirs = (await runJob(s, b.token, { name: 'build-other', command: ['true'] })).job;
  }, 120_000);
  afterAll(async () => {
    await s?.stop();
  });

  it('order=desc lists newest first; order=asc and no order keep the oldest first', async () => {
    expect(mine).toHaveLength(5);
    expect(mine.map((j) => j.name)).toEqual(['Build-alpha', 'build-beta', 'deploy', 'build-gamma', 'lint']);
    expect(ids(await list(a.token, 'order=desc'))).toEqual(ids(mine).reverse());
    expect(ids(await list(a.token, 'order=asc'))).toEqual(ids(mine));
  });

  it('status takes several values, comma-separated or repeated', async () => {
    const failed = mine.filter((j) => j.status === 'failed').map((j) => j.id);
    const want = mine.filter((j) => j.status === 'failed' || j.status === 'success').map((j) => j.id);
    expect(failed).toHaveLength(2);
    expect(ids(await list(a.token, 'status=failed'))).toEqual(failed);
    expect(ids(await list(a.token, 'status=success,failed'))).toEqual(want);
    expect(ids(await list(a.token, 'status=success&status=failed'))).toEqual(want);
    expect(ids(await list(a.token, 'status=failed&status=canceled&order=desc'))).toEqual([...failed].reverse());
    expect(await list(a.token, 'status=pending,running')).toEqual([]);
  });

  it('name matches a substring, ignoring ASCII case', async () => {
    expect((await list(a.token, 'name=build')).map((j) => j.name)).toEqual(['Build-alpha', 'build-beta', 'build-gamma']);
    expect((await list(a.token, 'name=BETA')).map((j) => j.name)).toEqual(['build-beta']);
    expect((await list(a.token, 'name=ploy&status=success')).map((j) => j.name)).toEqual(['deploy']);
    expect(await list(a.token, 'name=nomatch')).toEqual([]);
  });

  it('created_after / created_before bound the creation time (strictly)', async () => {
    const at = (i: number) => encodeURIComponent(mine[i]!.created_at);
    expect(ids(await list(a.token, `created_after=${at(1)}`))).toEqual(ids(mine.slice(2)));
    expect(ids(await list(a.token, `created_before=${at(3)}`))).toEqual(ids(mine.slice(0, 3)));
    expect(ids(await list(a.token, `created_after=${at(0)}&created_before=${at(4)}&order=desc`))).toEqual(ids(mine.slice(1, 4)).reverse());
    expect(await list(a.token, 'created_after=2999-01-01T00:00:00Z')).toEqual([]);
    expect(ids(await list(a.token, 'created_after=2000-01-01T00:00:00%2B02:00'))).toEqual(ids(mine));
  });

  it('owner_id: admins and viewers narrow to anyone; an operator only ever sees their own', async () => {
    for (const token of [s.adminToken, viewer.token]) {
      expect(ids(await list(token, `owner_id=${a.id}`))).toEqual(ids(mine));
      expect(ids(await list(token, `owner_id=${b.id}`))).toEqual([theirs.id]);
      expect(await list(token, `owner_id=${randomUUID()}`)).toEqual([]);
      expect(await list(token, 'owner_id=not-an-id')).toEqual([]);
    }
    expect(ids(await list(a.token, `owner_id=${a.id}`))).toEqual(ids(mine));
    expect(await list(a.token, `owner_id=${b.id}`)).toEqual([]);
    expect(ids(await list(b.token))).toEqual([theirs.id]);
  });

  it('limit + X-Next-Cursor walk every job exactly once with order=desc, filters kept', async () => {
    for (const [query, want] of [
      ['order=desc', ids(mine).reverse()],
      ['order=desc&name=build', ids(mine.filter((j) => /build/i.test(j.name!))).reverse()],
      ['order=asc', ids(mine)],
    ] as const) {
      const seen: string[] = [];
      let after: string | null = null;
      for (let guard = 0; guard < 10; guard++) {
        const res = await s.request('GET', `/jobs?${query}&limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`, { token: a.token });
        expect(res.status, res.text).toBe(200);
        seen.push(...ids(res.body));
        after = res.headers.get('x-next-cursor');
        if (!after) break;
      }
      expect(seen, query).toEqual(want);
    }
  });

  it('bad values are a 422 naming the field', async () => {
    for (const [query, field] of [
      ['order=newest', 'order'],
      ['status=success,bogus', 'status'],
      ['status=success&status=nope', 'status'],
      ['status=', 'status'],
      ['created_after=yesterday', 'created_after'],
      ['created_before=2026-13-01T00:00:00Z', 'created_before'],
      ['name=', 'name'],
      ['colour=red', 'colour'],
    ]) {
      const res = await s.request('GET', `/jobs?${query}`, { token: a.token });
      expect(res.status, query).toBe(422);
      expect(JSON.stringify(res.body.detail), query).toContain(`"${field}"`);
    }
    // A cursor that does not decode is a 400 naming `after`, as before.
    const cursor = await s.request('GET', '/jobs?order=desc&after=garbage', { token: a.token });
    expect(cursor.status).toBe(400);
    expect(cursor.text).toContain('after');
  });

  describe('GraphQL jobs(...)', () => {
    const Q = `query($first: Int, $after: String, $last: Int, $before: String, $order: SortOrder, $statuses: [JobStatus!], $status: JobStatus,
        $name: String, $ownerId: ID, $createdAfter: DateTime, $createdBefore: DateTime) {
      jobs(first: $first, after: $after, last: $last, before: $before, order: $order, statuses: $statuses, status: $status,
           name: $name, ownerId: $ownerId, createdAfter: $createdAfter, createdBefore: $createdBefore) {
        edges { cursor node { id name status ownerId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`;
    const gql = async (vars: Record<string, unknown>, token = a.token) => {
      const res = await s.graphql(Q, vars, token);
      expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
      return res.data.jobs as { edges: { cursor: string; node: { id: string } }[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string; endCursor: string } };
    };
    const nodes = (c: Awaited<ReturnType<typeof gql>>) => c.edges.map((e) => e.node.id);

    it('takes the same filters as REST and agrees with it', async () => {
      expect(nodes(await gql({ order: 'DESC' }))).toEqual(ids(await list(a.token, 'order=desc')));
      expect(nodes(await gql({ statuses: ['SUCCESS', 'FAILED'] }))).toEqual(ids(await list(a.token, 'status=success,failed')));
      expect(nodes(await gql({ status: 'FAILED' }))).toEqual(ids(await list(a.token, 'status=failed')));
      expect(nodes(await gql({ name: 'build', order: 'DESC' }))).toEqual(ids(await list(a.token, 'name=build&order=desc')));
      expect(nodes(await gql({ createdAfter: mine[0]!.created_at, createdBefore: mine[4]!.created_at }))).toEqual(ids(mine.slice(1, 4)));
      expect(nodes(await gql({ ownerId: b.id }, viewer.token))).toEqual([theirs.id]);
      expect(nodes(await gql({ ownerId: b.id }))).toEqual([]);
    });

    it('last/before page backward, in either order, visiting every job exactly once', async () => {
      for (const order of ['ASC', 'DESC']) {
        const forward = nodes(await gql({ order }));
        const tail = await gql({ order, last: 2 });
        expect(nodes(tail)).toEqual(forward.slice(-2));
        expect(tail.pageInfo.hasPreviousPage).toBe(true);
        const seen: string[] = [...nodes(tail)];
        let before = tail.pageInfo.startCursor;
        for (let guard = 0; guard < 10; guard++) {
          const page = await gql({ order, last: 2, before });
          expect(page.pageInfo.hasNextPage).toBe(true);
          seen.unshift(...nodes(page));
          if (!page.pageInfo.hasPreviousPage) break;
          before = page.pageInfo.startCursor;
        }
        expect(seen, order).toEqual(forward);
      }
      expect(nodes(await gql({ last: 3 }))).toHaveLength(3);
    });

    it('refuses mixing directions and bad values', async () => {
      const mixed = await s.graphql(Q, { first: 2, last: 2 }, a.token);
      expect(mixed.errors?.[0].message).toMatch(/cannot be combined/);
      const badOrder = await s.graphql(Q, { order: 'NEWEST' }, a.token);
      expect(badOrder.errors).toBeDefined();
      const badLast = await s.graphql(Q, { last: 0 }, a.token);
      expect(badLast.errors?.[0].message).toMatch(/last must be between/);
    });
  });
  describe('GET /job-batches and GraphQL batches(...) take the same arguments (no status)', () => {
    let batches: { id: string; name: string; created_at: string }[] = [];
    let other: { id: string };
    beforeAll(async () => {
      for (const name of ['Nightly-1', 'weekly', 'nightly-2']) {
        const res = await s.request('POST', '/job-batches', { token: a.token, body: { name, jobs: [{ name: 'in-batch', command: ['true'] }] } });
        expect(res.status, res.text).toBe(201);
        batches.push(res.body);
        await new Promise((r) => setTimeout(r, 5));
      }
      const res = await s.request('POST', '/job-batches', { token: b.token, body: { name: 'nightly-b', jobs: [{ name: 'in-batch', command: ['true'] }] } });
      other = res.body;
      const listed = await s.request('GET', '/job-batches', { token: a.token });
      batches = listed.body;
    });
    const blist = async (token: string, query = '') => {
      const res = await s.request('GET', `/job-batches?${query}`, { token });
      expect(res.status, res.text).toBe(200);
      return ids(res.body);
    };

    it('order, name, created bounds, owner_id and desc paging', async () => {
      expect(batches.map((x) => x.name)).toEqual(['Nightly-1', 'weekly', 'nightly-2']);
      expect(await blist(a.token, 'order=desc')).toEqual(ids(batches).reverse());
      expect(await blist(a.token, 'name=NIGHTLY')).toEqual([batches[0]!.id, batches[2]!.id]);
      expect(await blist(a.token, `created_after=${encodeURIComponent(batches[0]!.created_at)}`)).toEqual(ids(batches.slice(1)));
      expect(await blist(a.token, `created_before=${encodeURIComponent(batches[2]!.created_at)}`)).toEqual(ids(batches.slice(0, 2)));
      expect(await blist(viewer.token, `owner_id=${b.id}`)).toEqual([other.id]);
      expect(await blist(a.token, `owner_id=${b.id}`)).toEqual([]);
      const seen: string[] = [];
      let after: string | null = null;
      for (let guard = 0; guard < 10; guard++) {
        const res = await s.request('GET', `/job-batches?order=desc&limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`, { token: a.token });
        seen.push(...ids(res.body));
        after = res.headers.get('x-next-cursor');
        if (!after) break;
      }
      expect(seen).toEqual(ids(batches).reverse());
      for (const [query, field] of [['order=up', 'order'], ['created_after=soon', 'created_after'], ['status=success', 'status']]) {
        const res = await s.request('GET', `/job-batches?${query}`, { token: a.token });
        expect(res.status, query).toBe(422);
        expect(JSON.stringify(res.body.detail), query).toContain(`"${field}"`);
      }
    });

    it('GraphQL batches: the same filters, and last/before', async () => {
      const Q = `query($order: SortOrder, $name: String, $last: Int, $before: String) {
        batches(order: $order, name: $name, last: $last, before: $before) { edges { node { id } } pageInfo { hasPreviousPage hasNextPage startCursor } } }`;
      const run = async (vars: Record<string, unknown>) => {
        const res = await s.graphql(Q, vars, a.token);
        expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
        return res.data.batches;
      };
      expect((await run({ order: 'DESC', name: 'nightly' })).edges.map((e: any) => e.node.id)).toEqual([batches[2]!.id, batches[0]!.id]);
      const tail = await run({ last: 2 });
      expect(tail.edges.map((e: any) => e.node.id)).toEqual(ids(batches.slice(1)));
      expect(tail.pageInfo.hasPreviousPage).toBe(true);
      const head = await run({ last: 2, before: tail.pageInfo.startCursor });
      expect(head.edges.map((e: any) => e.node.id)).toEqual([batches[0]!.id]);
      expect(head.pageInfo).toMatchObject({ hasPreviousPage: false, hasNextPage: true });
    });
  });
});
