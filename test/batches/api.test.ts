// Batches over REST and GraphQL: the seed's example, the shapes, listing and
// paging, all-or-nothing validation, roles and object-level authorization.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { startServer, type TestServer } from '../helpers/server.js';
import {
  countJobs, counts, createBatch, expectBatchRead, expectJobRead, gated, getBatch, isDone, listAll, newGate, openGate,
  runDir, waitBatch, type BatchRead, type User,
} from './helpers.js';

const SEED_BODY = {
  name: 'nightly-ui-suite',
  description: 'Chromium smoke',
  jobs: [
    { name: 'login', command: ['echo', 'tests/login.py'] },
    { name: 'checkout', command: ['echo', 'tests/checkout.py'] },
  ],
};

const BATCH_FIELDS = 'id name description ownerId createdAt status jobCounts { pending running success failed canceled total }';

describe.each(PROVIDERS)('batches API on %s', (provider) => {
  let s: TestServer;
  // Users cost a password hash each: make them once, in parallel.
  // op: most tests (they compare before/after, not absolute lists); pager: exact
  // lists, and the operator who must not see op's batches; viewer: read-only role.
  let op: User, pager: User, viewer: User;
  beforeAll(async () => {
    // Worker slots above any user's limit here: only per-user limits hold jobs
    // back in this file (the worker cap is exercised in fairness.test.ts).
    s = await startServer(provider, { WORKER_CONCURRENCY: '16' });
    [op, pager, viewer] = await Promise.all([s.user('operator'), s.user('operator'), s.user('viewer')]);
  });
  afterAll(async () => { await s?.stop(); });

  /** What a user sees of their own batches and jobs: nothing created means these do not move. */
  async function footprint(token: string) {
    const batches = await listAll<BatchRead>(s, token, '/job-batches', 1000);
    const stats = await s.request('GET', '/jobs/stats', { token });
    expect(stats.status).toBe(200);
    return { batches: batches.items.map((b) => b.id), jobs: stats.body.total as number };
  }

  describe('creating and reading', () => {
    it('creates the seed example: 201 with the saved batch and its jobs in submission order', async () => {
      const res = await s.request('POST', '/job-batches', { token: op.token, body: SEED_BODY });
      expect(res.status).toBe(201);
      const b = res.body as BatchRead;
      expectBatchRead(b, true);
      expect(b).toMatchObject({ name: 'nightly-ui-suite', description: 'Chromium smoke', owner_id: op.id });
      expect(['pending', 'running', 'success']).toContain(b.status);
      expect(b.job_counts.total).toBe(2);
      expect(b.jobs!.map((j) => j.name)).toEqual(['login', 'checkout']);
      expect(b.jobs!.map((j) => j.command)).toEqual([['echo', 'tests/login.py'], ['echo', 'tests/checkout.py']]);
      for (const j of b.jobs!) {
        expectJobRead(j, { batchId: b.id, ownerId: op.id });
        expect(j).toMatchObject({ env: {}, payload: null, timeout_seconds: null, working_dir: runDir(s, j.id) });
      }
      expect(new Set(b.jobs!.map((j) => j.id)).size).toBe(2);

      // The jobs run like any job, and the batch reflects it.
      const done = await waitBatch(s, op.token, b.id, (x) => x.status === 'success');
      expectBatchRead(done, true);
      expect(done.job_counts).toEqual(counts({ success: 2 }));
      expect(done.jobs!.map((j) => j.id)).toEqual(b.jobs!.map((j) => j.id));
      expect(done).toMatchObject({ id: b.id, name: b.name, description: b.description, owner_id: op.id, created_at: b.created_at });
      for (const j of done.jobs!) {
        expectJobRead(j, { batchId: b.id, ownerId: op.id });
        expect(j).toMatchObject({ status: 'success', exit_code: 0, error: null });
        expect(j.started_at).toMatch(/Z$/);
        expect(j.finished_at).toMatch(/Z$/);
      }
      const logs = await Promise.all(done.jobs!.map((j) => s.request('GET', `/jobs/${j.id}/logs`, { token: op.token })));
      expect(logs.map((l) => [l.status, l.body.stdout])).toEqual([[200, 'tests/login.py\n'], [200, 'tests/checkout.py\n']]);

      // Each job is an ordinary job of the owner, pointing at its batch.
      const one = await s.request('GET', `/jobs/${b.jobs![1]!.id}`, { token: op.token });
      expect(one.status).toBe(200);
      expect(one.body).toEqual(done.jobs![1]);

      // The list shows the batch without its jobs.
      const list = await s.request('GET', '/job-batches', { token: op.token });
      expect(list.status).toBe(200);
      const listed = list.body.filter((x: BatchRead) => x.id === b.id);
      expect(listed).toHaveLength(1);
      expectBatchRead(listed[0], false);
      expect(listed[0]).toEqual({ id: b.id, name: 'nightly-ui-suite', description: 'Chromium smoke', owner_id: op.id, created_at: b.created_at, status: 'success', job_counts: counts({ success: 2 }) });
    });

    it('the create response is consistent: job_counts and status agree with the jobs it returns', async () => {
      for (let i = 0; i < 5; i++) {
        const b = await createBatch(s, op.token, { name: `c${i}`, jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['true'] }] });
        expect(b.job_counts, `batch ${i}: counts ${JSON.stringify(b.job_counts)} vs jobs ${b.jobs!.map((j) => j.status)}`).toEqual(countJobs(b.jobs!));
      }
    });

    it('keeps every JobCreate field of batch jobs and runs them with it', async () => {
      const wd = join(s.db.dataDir, 'workspace', 'proj');
      mkdirSync(wd, { recursive: true });
      const b = await createBatch(s, op.token, {
        name: 'fields',
        jobs: [
          { name: 'with-all', command: ['sh', '-c', 'echo "$GREETING"; pwd'], working_dir: wd, env: { GREETING: 'hello there' }, payload: { ticket: 42, tags: ['a', 'b'], nested: { ok: true } }, timeout_seconds: 60 },
          { name: 'bare', command: ['true'], working_dir: null, env: null, payload: null, timeout_seconds: null },
        ],
      });
      expect(b.description).toBeNull();
      const [full, bare] = b.jobs!;
      expect(full).toMatchObject({ name: 'with-all', command: ['sh', '-c', 'echo "$GREETING"; pwd'], working_dir: wd, env: { GREETING: 'hello there' }, payload: { ticket: 42, tags: ['a', 'b'], nested: { ok: true } }, timeout_seconds: 60, batch_id: b.id });
      expect(bare).toMatchObject({ name: 'bare', working_dir: runDir(s, bare!.id), env: {}, payload: null, timeout_seconds: null, batch_id: b.id });
      await waitBatch(s, op.token, b.id, (x) => x.status === 'success');
      const logs = await s.request('GET', `/jobs/${full!.id}/logs`, { token: op.token });
      expect(logs.body.stdout).toBe(`hello there\n${wd}\n`);
    });

    it('GET /jobs?batch_id= lists exactly the batch\'s jobs, with and without limit', async () => {
      const b = await createBatch(s, op.token, { name: 'filter', jobs: [{ name: 'f0', command: ['true'] }, { name: 'f1', command: ['true'] }, { name: 'f2', command: ['true'] }] });
      const ids = b.jobs!.map((j) => j.id);
      await createBatch(s, op.token, { name: 'noise', jobs: [{ name: 'n0', command: ['true'] }] });
      // Paged (limit=1, following X-Next-Cursor).
      const paged = await listAll<{ id: string; batch_id: string }>(s, op.token, `/jobs?batch_id=${b.id}`, 1);
      expect(paged.items.map((j) => j.id)).toEqual(ids);
      expect(paged.pages).toEqual([1, 1, 1]);
      // The documented default and maximum page size (1000), and no limit at all.
      for (const q of [`batch_id=${b.id}&limit=1000`, `batch_id=${b.id}`]) {
        const r = await s.request('GET', `/jobs?${q}`, { token: op.token });
        expect(r.status, `GET /jobs?${q}: ${r.text}`).toBe(200);
        expect(r.body.map((j: { id: string }) => j.id)).toEqual(ids);
        expect(r.headers.get('x-next-cursor')).toBeNull();
      }
    });

    it('GET /job-batches and GraphQL batches(first, after) page oldest first, REST without jobs', async () => {
      const created: BatchRead[] = [];
      for (let i = 0; i < 5; i++) created.push(await createBatch(s, pager.token, { name: `page-${i}`, jobs: [{ name: 'x', command: ['true'] }] }));

      const first = await s.request('GET', '/job-batches?limit=2', { token: pager.token });
      expect(first.status).toBe(200);
      expect(first.body.map((b: BatchRead) => b.name)).toEqual(['page-0', 'page-1']);
      const cursor = first.headers.get('x-next-cursor');
      expect(cursor).toBeTruthy();
      for (const b of first.body) expectBatchRead(b, false);

      const second = await s.request('GET', `/job-batches?limit=2&after=${encodeURIComponent(cursor!)}`, { token: pager.token });
      expect(second.body.map((b: BatchRead) => b.name)).toEqual(['page-2', 'page-3']);

      const all = await listAll<BatchRead>(s, pager.token, '/job-batches', 2);
      expect(all.pages).toEqual([2, 2, 1]);
      expect(all.items.map((b) => b.id)).toEqual(created.map((b) => b.id));
      for (const b of all.items) expect(b).not.toHaveProperty('jobs');

      // Exactly one page: no cursor.
      const whole = await s.request('GET', '/job-batches?limit=5', { token: pager.token });
      expect(whole.body).toHaveLength(5);
      expect(whole.headers.get('x-next-cursor')).toBeNull();
      const noLimit = await s.request('GET', '/job-batches', { token: pager.token });
      expect(noLimit.body.map((b: BatchRead) => b.id)).toEqual(created.map((b) => b.id));

      // The GraphQL connection pages the same list.
      const page = `query($first: Int, $after: String) { batches(first: $first, after: $after) { edges { cursor node { id name status } } pageInfo { hasNextPage endCursor } } }`;
      const seen: string[] = [];
      let after: string | null = null;
      const sizes: number[] = [];
      for (;;) {
        const r: any = await s.graphql(page, { first: 2, after }, pager.token);
        expect(r.errors).toBeUndefined();
        seen.push(...r.data.batches.edges.map((e: any) => e.node.id));
        sizes.push(r.data.batches.edges.length);
        if (!r.data.batches.pageInfo.hasNextPage) break;
        after = r.data.batches.pageInfo.endCursor;
      }
      expect(sizes).toEqual([2, 2, 1]);
      expect(seen).toEqual(created.map((b) => b.id));

      for (const bad of ['limit=0', 'limit=1001', 'limit=abc', 'bogus=1']) {
        const r = await s.request('GET', `/job-batches?${bad}`, { token: pager.token });
        expect(r.status, bad).toBe(422);
        expect(r.body.detail[0].loc[0]).toBe('query');
      }
    });

    it('GraphQL createBatch and batch(id) { jobs } return the batch and its jobs in order', async () => {
      const created = await s.graphql(
        `mutation($input: CreateBatchInput!) { createBatch(input: $input) { ${BATCH_FIELDS} jobs { id name batchId ownerId command status } } }`,
        { input: { name: 'gql', description: 'via graphql', jobs: [{ name: 'one', command: ['echo', '1'] }, { name: 'two', command: ['echo', '2'] }, { name: 'three', command: ['echo', '3'] }] } },
        op.token,
      );
      expect(created.errors).toBeUndefined();
      const b = created.data.createBatch;
      expect(b).toMatchObject({ name: 'gql', description: 'via graphql', ownerId: op.id });
      expect(['PENDING', 'RUNNING', 'SUCCESS']).toContain(b.status);
      expect(b.jobCounts.total).toBe(3);
      expect(b.jobs.map((j: any) => j.name)).toEqual(['one', 'two', 'three']);
      for (const j of b.jobs) expect(j).toMatchObject({ batchId: b.id, ownerId: op.id });

      await waitBatch(s, op.token, b.id, (x) => x.status === 'success');
      const got = await s.graphql(`query($id: ID!) { batch(id: $id) { ${BATCH_FIELDS} jobs { id status exitCode } } }`, { id: b.id }, op.token);
      expect(got.errors).toBeUndefined();
      expect(got.data.batch.jobs.map((j: any) => j.id)).toEqual(b.jobs.map((j: any) => j.id));
      expect(got.data.batch).toMatchObject({ id: b.id, status: 'SUCCESS', jobCounts: counts({ success: 3 }) });
      expect(got.data.batch.jobs.every((j: any) => j.status === 'SUCCESS' && j.exitCode === 0)).toBe(true);

      // REST sees the same batch.
      const rest = await getBatch(s, op.token, b.id);
      expect(rest.jobs!.map((j) => j.id)).toEqual(b.jobs.map((j: any) => j.id));
      expect(rest.created_at).toBe(b.createdAt);
    });
  });

  describe('all or nothing', () => {
    it('one job missing its command (index 3): 422 at body.jobs.3.command and nothing is created', async () => {
      const before = await footprint(op.token);
      const adminBefore = await s.request('GET', '/jobs/stats', { token: s.adminToken });
      const jobs: Record<string, unknown>[] = Array.from({ length: 6 }, (_, i) => ({ name: `j${i}`, command: ['true'] }));
      delete jobs[3]!.command;
      const res = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'bad', jobs } });
      expect(res.status).toBe(422);
      expect(res.body.detail).toHaveLength(1);
      expect(res.body.detail[0]).toMatchObject({ type: 'missing', loc: ['body', 'jobs', 3, 'command'], msg: 'Field required' });
      expect(await footprint(op.token)).toEqual(before);
      const adminAfter = await s.request('GET', '/jobs/stats', { token: s.adminToken });
      expect(adminAfter.body.total).toBe(adminBefore.body.total);
    });

    it('other shape errors of one job name its index; unknown fields are extra_forbidden', async () => {
      const before = await footprint(op.token);
      const cases: [Record<string, unknown>, number, (string | number)[], string][] = [
        [{ name: 'x', command: [] }, 1, ['body', 'jobs', 1, 'command'], 'too_short'],
        [{ name: '', command: ['true'] }, 4, ['body', 'jobs', 4, 'name'], 'string_too_short'],
        [{ name: 'x', command: ['true'], timeout_seconds: 0 }, 0, ['body', 'jobs', 0, 'timeout_seconds'], 'greater_than_equal'],
        [{ name: 'x', command: ['true'], shell: true }, 2, ['body', 'jobs', 2, 'shell'], 'extra_forbidden'],
        [{ name: 'x', command: ['true'], working_dir: 'relative/dir' }, 3, ['body', 'jobs', 3, 'working_dir'], 'value_error'],
      ];
      for (const [bad, at, loc, type] of cases) {
        const jobs: unknown[] = Array.from({ length: 5 }, (_, i) => ({ name: `ok${i}`, command: ['true'] }));
        jobs[at] = bad;
        const res = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'bad', jobs } });
        expect(res.status, JSON.stringify(bad)).toBe(422);
        expect(res.body.detail.map((d: any) => d.loc), JSON.stringify(bad)).toContainEqual(loc);
        expect(res.body.detail.find((d: any) => JSON.stringify(d.loc) === JSON.stringify(loc)).type).toBe(type);
      }
      const extra = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'bad', jobs: [{ name: 'x', command: ['true'] }], priority: 1 } });
      expect(extra.status).toBe(422);
      expect(extra.body.detail[0]).toMatchObject({ type: 'extra_forbidden', loc: ['body', 'priority'] });
      const noName = await s.request('POST', '/job-batches', { token: op.token, body: { jobs: [{ name: 'x', command: ['true'] }] } });
      expect(noName.status).toBe(422);
      expect(noName.body.detail[0]).toMatchObject({ type: 'missing', loc: ['body', 'name'] });
      expect(await footprint(op.token)).toEqual(before);
    });

    it('a bad working_dir at index 2: 400 whose detail names the job, and nothing is created', async () => {
      const before = await footprint(op.token);
      const outside = join(s.db.dataDir, 'outside');
      mkdirSync(outside, { recursive: true });
      const aFile = join(s.db.dataDir, 'workspace', 'a-file');
      writeFileSync(aFile, 'x');
      for (const dir of ['/definitely/missing/dir', outside, aFile]) {
        const jobs: Record<string, unknown>[] = Array.from({ length: 4 }, (_, i) => ({ name: `j${i}`, command: ['true'] }));
        jobs[2]!.working_dir = dir;
        const res = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'bad-dir', jobs } });
        expect(res.status, dir).toBe(400);
        expect(typeof res.body.detail).toBe('string');
        // The index of the offending job, and which field.
        expect(res.body.detail, dir).toMatch(/\b2\b/);
        expect(res.body.detail, dir).not.toMatch(/\b[013]\b/);
        expect(res.body.detail).toMatch(/working_dir/);
      }
      // A loader variable in one job's env is the same kind of domain error.
      const env = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'bad-env', jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['true'], env: { LD_PRELOAD: '/x.so' } }] } });
      expect(env.status).toBe(400);
      expect(env.body.detail).toMatch(/\b1\b/);
      expect(env.body.detail).toMatch(/LD_PRELOAD/);
      expect(await footprint(op.token)).toEqual(before);
    });

    it('0 jobs and 1001 jobs are 422 and create nothing; a missing jobs list too', async () => {
      const before = await footprint(op.token);
      const zero = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'empty', jobs: [] } });
      expect(zero.status).toBe(422);
      expect(zero.body.detail[0]).toMatchObject({ type: 'too_short', loc: ['body', 'jobs'] });
      const tooMany = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'huge', jobs: Array.from({ length: 1001 }, (_, i) => ({ name: `j${i}`, command: ['true'] })) } });
      expect(tooMany.status).toBe(422);
      expect(tooMany.body.detail[0]).toMatchObject({ type: 'too_long', loc: ['body', 'jobs'] });
      const missing = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'nothing' } });
      expect(missing.status).toBe(422);
      expect(missing.body.detail[0]).toMatchObject({ type: 'missing', loc: ['body', 'jobs'] });
      expect(await footprint(op.token)).toEqual(before);
    });

    it('GraphQL createBatch with one invalid job is an error and creates nothing', async () => {
      const before = await footprint(op.token);
      const mutation = `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`;
      const shape = await s.graphql(mutation, { input: { name: 'g-bad', jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['true'] }, { name: 'c', command: [] }] } }, op.token);
      expect(shape.data?.createBatch ?? null).toBeNull();
      expect(shape.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const dir = await s.graphql(mutation, { input: { name: 'g-bad', jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['true'], workingDir: '/definitely/missing/dir' }] } }, op.token);
      expect(dir.data?.createBatch ?? null).toBeNull();
      expect(dir.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(dir.errors?.[0]?.message).toMatch(/\b1\b/);
      const empty = await s.graphql(mutation, { input: { name: 'g-empty', jobs: [] } }, op.token);
      expect(empty.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      // A job without its required command never reaches the resolver.
      const missing = await s.graphql(mutation, { input: { name: 'g-bad', jobs: [{ name: 'a', command: ['true'] }, { name: 'b' }] } }, op.token);
      expect(missing.errors?.length).toBeGreaterThan(0);
      expect(await footprint(op.token)).toEqual(before);
      const gq = await s.graphql(`{ batches(first: 100) { edges { node { id } } } jobStats { total } }`, undefined, op.token);
      expect(gq.data.batches.edges.map((e: any) => e.node.id)).toEqual(before.batches);
      expect(gq.data.jobStats.total).toBe(before.jobs);
    });
  });

  describe('roles and object-level authorization', () => {
    it('another operator gets 404 on every route of a batch that is not theirs; the batch is untouched', async () => {
      const owner = op;
      const other = pager;
      const gate = newGate();
      const b = await createBatch(s, owner.token, { name: 'mine', jobs: [{ name: 'hold', command: gated(gate) }, { name: 'hold-too', command: gated(gate) }] });
      await waitBatch(s, owner.token, b.id, (x) => x.job_counts.running === 2);

      const probes: [string, string, unknown?][] = [
        ['GET', `/job-batches/${b.id}`],
        ['POST', `/job-batches/${b.id}/cancel`],
        ['POST', `/job-batches/${b.id}/force-complete`, { status: 'failed' }],
        ['DELETE', `/job-batches/${b.id}`],
      ];
      for (const [method, path, body] of probes) {
        const r = await s.request(method, path, { token: other.token, body });
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.body).toEqual({ detail: expect.any(String) });
      }
      // The same 404, word for word, as for a batch that does not exist.
      const real = await s.request('GET', `/job-batches/${b.id}`, { token: other.token });
      const none = await s.request('GET', '/job-batches/0190a4e2-0000-7000-8000-000000000000', { token: other.token });
      expect(real.body).toEqual(none.body);

      const list = await s.request('GET', '/job-batches', { token: other.token });
      expect(list.status).toBe(200);
      expect(list.body.map((x: BatchRead) => x.owner_id)).not.toContain(owner.id);
      expect(list.body.map((x: BatchRead) => x.id)).not.toContain(b.id);
      const jobs = await s.request('GET', `/jobs?batch_id=${b.id}&limit=100`, { token: other.token });
      expect(jobs.status).toBe(200);
      expect(jobs.body).toEqual([]);
      expect((await s.request('GET', `/jobs/${b.jobs![0]!.id}`, { token: other.token })).status).toBe(404);
      const gq = await s.graphql(`query($id: ID!) { batch(id: $id) { id } }`, { id: b.id }, other.token);
      expect(gq.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      for (const m of [`cancelBatch(id: $id) { id }`, `forceCompleteBatch(id: $id, input: { status: FAILED }) { id }`, `deleteBatch(id: $id)`]) {
        const r = await s.graphql(`mutation($id: ID!) { ${m} }`, { id: b.id }, other.token);
        expect(r.errors?.[0]?.extensions?.code, m).toBe('NOT_FOUND');
      }

      // Nothing the other operator did reached the batch.
      const still = await getBatch(s, owner.token, b.id);
      expect(still.status).toBe('running');
      expect(still.job_counts).toEqual(counts({ running: 2 }));

      // The admin sees it and everyone's batches.
      const otherBatch = await createBatch(s, other.token, { name: 'theirs', jobs: [{ name: 'x', command: ['true'] }] });
      expect((await s.request('GET', `/job-batches/${b.id}`, { token: s.adminToken })).status).toBe(200);
      const all = await listAll<BatchRead>(s, s.adminToken, '/job-batches', 1000);
      expect(all.items.map((x) => x.id)).toEqual(expect.arrayContaining([b.id, otherBatch.id]));
      const adminGq = await s.graphql(`{ batches(first: 1000) { edges { node { id ownerId } } } }`);
      expect(adminGq.data.batches.edges.map((e: any) => e.node.id)).toEqual(expect.arrayContaining([b.id, otherBatch.id]));
      const ownerList = await s.request('GET', '/job-batches', { token: owner.token });
      expect(ownerList.body.map((x: BatchRead) => x.id)).toContain(b.id);
      expect(ownerList.body.map((x: BatchRead) => x.id)).not.toContain(otherBatch.id);

      openGate(gate);
      await waitBatch(s, owner.token, b.id, (x) => x.status === 'success');
    });

    it('unknown and malformed ids are 404 on every batch route, even for the admin', async () => {
      for (const id of ['0190a4e2-0000-7000-8000-000000000000', 'not-a-uuid', '123', '%E2%98%83', 'x'.repeat(300)]) {
        for (const token of [op.token, s.adminToken]) {
          for (const [method, path, body] of [
            ['GET', `/job-batches/${id}`],
            ['POST', `/job-batches/${id}/cancel`],
            ['POST', `/job-batches/${id}/force-complete`, { status: 'failed' }],
            ['DELETE', `/job-batches/${id}`],
          ] as [string, string, unknown?][]) {
            const r = await s.request(method, path, { token, body });
            // An operator's force-complete of a batch that does not exist is a 404 as well (it may not see it).
            expect(r.status, `${method} ${path}`).toBe(404);
            expect(r.body).toHaveProperty('detail');
          }
        }
      }
      const jobs = await s.request('GET', '/jobs?batch_id=not-a-uuid&limit=100', { token: op.token });
      expect(jobs.status).toBe(200);
      expect(jobs.body).toEqual([]);
    });

    it('viewers cannot create, cancel or delete batches (403) but see everyone\'s; operators cannot force-complete (403)', async () => {
      const res = await s.request('POST', '/job-batches', { token: viewer.token, body: SEED_BODY });
      expect(res.status).toBe(403);
      expect(typeof res.body.detail).toBe('string');
      const gq = await s.graphql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, { input: SEED_BODY }, viewer.token);
      expect(gq.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      // A viewer observes everyone's batches, and changes none of them.
      const b = await createBatch(s, op.token, { name: 'op', jobs: [{ name: 'x', command: ['true'] }] });
      const list = await s.request('GET', '/job-batches', { token: viewer.token });
      expect(list.status).toBe(200);
      expect(list.body.map((x: { id: string }) => x.id)).toContain(b.id);
      expect((await s.request('GET', '/jobs/stats', { token: viewer.token })).body.total).toBeGreaterThan(0);
      expect((await s.request('GET', `/job-batches/${b.id}`, { token: viewer.token })).status).toBe(200);
      for (const [method, path] of [['POST', `/job-batches/${b.id}/cancel`], ['DELETE', `/job-batches/${b.id}`]] as const) {
        expect((await s.request(method, path, { token: viewer.token })).status, `${method} ${path}`).toBe(403);
      }
      await waitBatch(s, op.token, b.id, isDone);

      // Unauthenticated: 401 with the Bearer challenge.
      for (const [method, path] of [['GET', '/job-batches'], ['POST', '/job-batches'], ['GET', `/job-batches/${b.id}`], ['DELETE', `/job-batches/${b.id}`]] as const) {
        const r = await s.request(method, path, { body: method === 'POST' ? SEED_BODY : undefined });
        expect(r.status, `${method} ${path}`).toBe(401);
        expect(r.body).toEqual({ detail: 'Not authenticated' });
        expect(r.headers.get('www-authenticate')).toBe('Bearer');
      }
    });
  });
});
