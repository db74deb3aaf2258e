// Reading and steering jobs: lists (own vs all), filters, cursor paging over
// REST and GraphQL, stats; who may touch whose job (BOLA: another user's job
// is exactly as invisible as one that does not exist); and stopping jobs —
// cancel (pending and running), timeouts, admin force-complete, purge.
//
// A running job here is usually `sh -c 'sleep 300 & sleep 300'`: the job's
// init (PID 1 of its namespace) leads the host process group of sh and both
// sleeps; the test finds the init's host pid in the job's cgroup (jobGroup),
// not from the job, and watches the whole group.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import {
  getJob, getLogs, groupGone, groupMembers, HOLD_GROUP, jobGroup, killGroup, ms, processGroupAlive, runJob,
  STATS_KEYS, submit, waitRunning, waitTerminal, type JobRead,
} from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';

type User = Awaited<ReturnType<TestServer['user']>>;

describe.each(PROVIDERS)('reading and controlling jobs on %s', (provider) => {
  let s: TestServer;
  let a: User;
  let b: User;
  let viewer: User;
  const groups: number[] = [];

  beforeAll(async () => {
    s = await startServer(provider);
    [a, b, viewer] = await Promise.all([s.user('operator'), s.user('operator'), s.user('viewer')]);
  });
  afterEach(() => {
    // Whatever a failed test left behind.
    for (const g of groups.splice(0)) killGroup(g);
  });
  afterAll(async () => {
    await s?.stop();
  });

  const list = async (token: string, query = 'limit=100'): Promise<JobRead[]> => {
    const res = await s.request('GET', `/jobs?${query}`, { token });
    expect(res.status, res.text).toBe(200);
    expect(Array.isArray(res.body)).toBe(true);
    return res.body;
  };

  /** Starts a HOLD_GROUP job (or `body`'s command) and returns it running, with its process group id. */
  async function holdGroup(token: string, body: Record<string, unknown> = {}): Promise<{ job: JobRead; pgid: number }> {
    const submitted = await submit(s, token, { name: 'hold', command: ['sh', '-c', HOLD_GROUP], ...body });
    const job = await waitRunning(s, token, submitted.id);
    const pgid = await jobGroup(job.id);
    groups.push(pgid);
    // The job's init leads the group on the host, and both sleeps are in it.
    await expect.poll(() => groupMembers(pgid).filter((p) => p.cmdline === 'sleep 300').length, { timeout: 5000 }).toBe(2);
    expect(groupMembers(pgid).map((p) => p.pid)).toContain(pgid);
    expect(pgid).not.toBe(process.pid);
    return { job, pgid };
  }

  describe('lists, filters, paging and stats', () => {
    beforeAll(async () => {
      // Each operator starts with a few finished jobs.
      for (const cmd of [['true'], ['false']]) await runJob(s, a.token, { name: `a-${cmd[0]}`, command: cmd });
      await runJob(s, b.token, { name: 'b-true', command: ['true'] });
    });

    function expectCreatedOrder(jobs: JobRead[]) {
      for (let i = 1; i < jobs.length; i++) {
        const [p, c] = [jobs[i - 1]!, jobs[i]!];
        expect(ms(c.created_at) > ms(p.created_at) || (ms(c.created_at) === ms(p.created_at) && c.id > p.id), `order at ${i}`).toBe(true);
      }
    }

    it("GET /jobs lists an operator's own jobs only; an admin sees everyone's", async () => {
      const mine = await list(a.token);
      expect(mine.map((j) => j.name)).toEqual(['a-true', 'a-false']);
      expect(mine.every((j) => j.owner_id === a.id)).toBe(true);
      const theirs = await list(b.token);
      expect(theirs.map((j) => j.name)).toEqual(['b-true']);
      const all = await list(s.adminToken);
      expect(all.map((j) => j.id)).toEqual(expect.arrayContaining([...mine, ...theirs].map((j) => j.id)));
      expectCreatedOrder(all);
    });

    it('GET /jobs without limit, and with limit=1000, answers the whole list', async () => {
      const expected = (await list(s.adminToken)).map((j) => j.id);
      for (const query of ['', 'limit=1000']) {
        const res = await s.request('GET', `/jobs${query && '?' + query}`, { token: s.adminToken });
        expect(res.status, `GET /jobs?${query}: ${res.text}`).toBe(200);
        expect(res.body.map((j: JobRead) => j.id)).toEqual(expected);
        expect(res.headers.get('x-next-cursor')).toBeNull();
      }
    });

    it('filters by status; rejects a bad status or limit with 422', async () => {
      expect((await list(a.token, 'status=failed&limit=100')).map((j) => j.name)).toEqual(['a-false']);
      expect((await list(a.token, 'status=success&limit=100')).map((j) => j.name)).toEqual(['a-true']);
      expect(await list(a.token, 'status=running&limit=100')).toEqual([]);
      const bad = await s.request('GET', '/jobs?status=bogus', { token: a.token });
      expect(bad.status).toBe(422);
      expect(bad.body.detail[0].loc).toEqual(['query', 'status']);
      for (const limit of ['0', '1001', 'x']) {
        const res = await s.request('GET', `/jobs?limit=${limit}`, { token: a.token });
        expect(res.status, `limit=${limit}`).toBe(422);
        expect(res.body.detail[0].loc).toEqual(['query', 'limit']);
      }
    });

    it('filters by batch_id: an unknown batch lists nothing', async () => {
      expect(await list(a.token, `batch_id=${randomUUID()}&limit=100`)).toEqual([]);
      expect(await list(s.adminToken, `batch_id=${randomUUID()}&limit=100`)).toEqual([]);
    });

    it('limit + X-Next-Cursor walk every job exactly once, in created order', async () => {
      for (let i = 0; i < 5; i++) await submit(s, a.token, { name: `page-${i}`, command: ['true'] });
      const all = await list(a.token);
      expect(all).toHaveLength(7);
      expectCreatedOrder(all);

      const seen: string[] = [];
      const sizes: number[] = [];
      let after: string | null = null;
      for (let guard = 0; guard < 10; guard++) {
        const res = await s.request('GET', `/jobs?limit=3${after ? `&after=${encodeURIComponent(after)}` : ''}`, { token: a.token });
        expect(res.status, res.text).toBe(200);
        sizes.push(res.body.length);
        seen.push(...res.body.map((j: JobRead) => j.id));
        after = res.headers.get('x-next-cursor');
        if (!after) break;
      }
      expect(sizes).toEqual([3, 3, 1]);
      expect(seen).toEqual(all.map((j) => j.id));
      await Promise.all(all.map((j) => waitTerminal(s, a.token, j.id)));
    });

    it('GraphQL jobs(first, after) pages the same way, and filters by status', async () => {
      const all = (await list(a.token)).map((j) => j.id);
      const Q = `query($first: Int, $after: String, $status: JobStatus) {
        jobs(first: $first, after: $after, status: $status) { edges { cursor node { id status ownerId } } pageInfo { hasNextPage endCursor } } }`;
      const seen: string[] = [];
      let after: string | null = null;
      for (let guard = 0; guard < 10; guard++) {
        const res = await s.graphql(Q, { first: 3, after }, a.token);
        expect(res.errors).toBeUndefined();
        const conn = res.data.jobs;
        seen.push(...conn.edges.map((e: any) => e.node.id));
        expect(conn.edges.every((e: any) => e.node.ownerId === a.id)).toBe(true);
        if (!conn.pageInfo.hasNextPage) break;
        after = conn.pageInfo.endCursor;
      }
      expect(seen).toEqual(all);
      const failed = await s.graphql(Q, { first: 10, status: 'FAILED' }, a.token);
      expect(failed.data.jobs.edges.map((e: any) => e.node.status)).toEqual(['FAILED']);
    });

    it('GET /jobs/stats has every key and counts only the caller\'s jobs (admins and viewers: all); jobStats agrees', async () => {
      await s.request('PATCH', `/users/${b.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 1 } });
      try {
        await runJob(s, b.token, { command: ['false'] });
        const { job: running } = await holdGroup(b.token);
        const pending = await submit(s, b.token, { command: ['true'] });
        expect((await getJob(s, b.token, pending.id)).status).toBe('pending');

        const stats = (await s.request('GET', '/jobs/stats', { token: b.token })).body;
        expect(Object.keys(stats).sort()).toEqual([...STATS_KEYS].sort());
        expect(stats).toEqual({ pending: 1, running: 1, success: 1, failed: 1, canceled: 0, total: 4 });

        const gql = await s.graphql('{ jobStats { pending running success failed canceled total } }', {}, b.token);
        expect(gql.data.jobStats).toEqual(stats);

        for (const id of [pending.id, running.id]) expect((await s.request('POST', `/jobs/${id}/cancel`, { token: b.token })).status).toBe(200);
        expect((await s.request('GET', '/jobs/stats', { token: b.token })).body).toEqual({ pending: 0, running: 0, success: 1, failed: 1, canceled: 2, total: 4 });

        const aStats = (await s.request('GET', '/jobs/stats', { token: a.token })).body;
        expect(aStats).toEqual({ pending: 0, running: 0, success: 6, failed: 1, canceled: 0, total: 7 });
        const adminStats = (await s.request('GET', '/jobs/stats', { token: s.adminToken })).body;
        const everything = await list(s.adminToken);
        expect(adminStats.total).toBe(everything.length);
        expect(adminStats.canceled).toBe(everything.filter((j) => j.status === 'canceled').length);
        expect((await s.request('GET', '/jobs/stats', { token: viewer.token })).body).toEqual(adminStats);
      } finally {
        await s.request('PATCH', `/users/${b.id}`, { token: s.adminToken, body: { max_concurrent_jobs: null } });
      }
    });
  });

  describe('authorization', () => {
    it("every job route answers 404 for another operator's job, exactly like an unknown or malformed id", async () => {
      const { job, pgid } = await holdGroup(a.token);
      const finished = (await list(a.token, 'status=success&limit=1'))[0]!;
      const routes = (id: string) => [
        ['GET', `/jobs/${id}`, undefined],
        ['GET', `/jobs/${id}/logs`, undefined],
        ['POST', `/jobs/${id}/cancel`, undefined],
        ['POST', `/jobs/${id}/force-complete`, { status: 'success' }],
        ['DELETE', `/jobs/${id}/purge`, undefined],
      ] as const;
      const call = async (token: string, id: string) =>
        Promise.all(routes(id).map(async ([method, path, body]) => {
          const res = await s.request(method, path, { token, body });
          return { route: `${method} ${path.replace(id, ':id')}`, status: res.status, body: res.body };
        }));

      const unknown = await call(b.token, randomUUID());
      for (const r of unknown) expect(r.status, r.route).toBe(404);
      for (const id of [job.id, finished.id]) {
        expect(await call(b.token, id)).toEqual(unknown);
      }
      for (const malformed of ['not-a-uuid', '12345', `${job.id}x`]) {
        for (const r of await call(b.token, malformed)) expect(r.status, `${r.route} with ${malformed}`).toBe(404);
        for (const r of await call(a.token, malformed)) expect(r.status, `${r.route} with ${malformed}`).toBe(404);
      }

      // Nothing happened to A's jobs.
      expect((await getJob(s, a.token, job.id)).status).toBe('running');
      expect(processGroupAlive(pgid)).toBe(true);
      expect((await getJob(s, a.token, finished.id)).status).toBe('success');
      expect((await s.request('POST', `/jobs/${job.id}/cancel`, { token: a.token })).status).toBe(200);
    });

    it("a viewer sees another user's job but cannot cancel or purge it (403)", async () => {
      const { job } = await holdGroup(a.token);
      expect((await list(viewer.token)).map((j) => j.id)).toContain(job.id);
      expect((await s.request('GET', `/jobs/${job.id}`, { token: viewer.token })).status).toBe(200);
      for (const [method, path] of [['POST', `/jobs/${job.id}/cancel`], ['DELETE', `/jobs/${job.id}/purge`]] as const) {
        expect((await s.request(method, path, { token: viewer.token })).status, `${method} ${path}`).toBe(403);
      }
      expect((await getJob(s, a.token, job.id)).status).toBe('running');
      expect((await s.request('POST', `/jobs/${job.id}/cancel`, { token: a.token })).status).toBe(200);
    });

    it('an operator may not force-complete their own job (403)', async () => {
      const { job, pgid } = await holdGroup(a.token);
      const res = await s.request('POST', `/jobs/${job.id}/force-complete`, { token: a.token, body: { status: 'success' } });
      expect(res.status).toBe(403);
      expect(typeof res.body.detail).toBe('string');
      expect((await getJob(s, a.token, job.id)).status).toBe('running');
      expect(processGroupAlive(pgid)).toBe(true);
      expect((await s.request('POST', `/jobs/${job.id}/cancel`, { token: a.token })).status).toBe(200);
    });

    it("GraphQL job(id) and cancelJob on another user's job are NOT_FOUND", async () => {
      const own = (await list(a.token, 'limit=1'))[0]!;
      const q = await s.graphql('query($id: ID!) { job(id: $id) { id name } }', { id: own.id }, b.token);
      expect(q.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      expect(q.data?.job ?? null).toBeNull();
      const unknown = await s.graphql('query($id: ID!) { job(id: $id) { id name } }', { id: randomUUID() }, b.token);
      expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      expect(q.errors?.[0]?.message).toBe(unknown.errors?.[0]?.message);
      const cancel = await s.graphql('mutation($id: ID!) { cancelJob(id: $id) { id } }', { id: own.id }, b.token);
      expect(cancel.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      const mine = await s.graphql('query($id: ID!) { job(id: $id) { id name } }', { id: own.id }, a.token);
      expect(mine.data.job).toEqual({ id: own.id, name: own.name });
    });
  });

  describe('stopping jobs', () => {
    // The jobs belong to operator A; force-complete is the admin's.
    it('cancel of a running job answers 200 canceled, and nothing of its process group is left', async () => {
      const { job, pgid } = await holdGroup(a.token);
      const res = await s.request('POST', `/jobs/${job.id}/cancel`, { token: a.token });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: job.id, status: 'canceled' });
      expect(res.body.finished_at).not.toBeNull();
      expect(processGroupAlive(pgid)).toBe(false);
      expect(await getJob(s, a.token, job.id)).toMatchObject({ status: 'canceled' });
      expect((await getLogs(s, a.token, job.id)).status).toBe('canceled');
    });

    it('cancel of a job that ignores SIGTERM kills it after the grace period (KILL_GRACE_SECONDS=1)', async () => {
      // An ignored signal stays ignored across exec, so the sleeps ignore SIGTERM too.
      const { job, pgid } = await holdGroup(a.token, { command: ['sh', '-c', `trap '' TERM; ${HOLD_GROUP}`] });
      const res = await s.request('POST', `/jobs/${job.id}/cancel`, { token: a.token });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('canceled');
      expect(processGroupAlive(pgid)).toBe(false);
    });

    it('timeout_seconds: 1 fails the job with "timed out" and kills its group', async () => {
      const { job, pgid } = await holdGroup(a.token, { timeout_seconds: 1 });
      const done = await waitTerminal(s, a.token, job.id, 20_000);
      expect(done.status).toBe('failed');
      expect(done.error).toMatch(/timed out/);
      expect(done.timeout_seconds).toBe(1);
      expect(processGroupAlive(pgid)).toBe(false);
    });

    it('admin force-complete of a running job kills it, records the status and exit code, and replaces stdout', async () => {
      const { job, pgid } = await holdGroup(a.token);
      const res = await s.request('POST', `/jobs/${job.id}/force-complete`, {
        token: s.adminToken,
        body: { status: 'failed', stdout: 'overridden output\nline 2\n', exit_code: 137 },
      });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ id: job.id, status: 'failed', exit_code: 137 });
      expect(processGroupAlive(pgid)).toBe(false);
      const logs = await getLogs(s, a.token, job.id);
      expect(logs).toMatchObject({ status: 'failed', exit_code: 137, stdout: 'overridden output\nline 2\n', stdout_truncated: false });
      expect(await getJob(s, a.token, job.id)).toMatchObject({ status: 'failed', exit_code: 137 });
    });

    it('admin force-complete as success of a pending job', async () => {
      await s.request('PATCH', `/users/${a.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 1 } });
      try {
        const { job: running, pgid } = await holdGroup(a.token);
        const pending = await submit(s, a.token, { command: ['true'] });
        expect((await getJob(s, a.token, pending.id)).status).toBe('pending');
        const res = await s.request('POST', `/jobs/${pending.id}/force-complete`, { token: s.adminToken, body: { status: 'success', stderr: 'from admin' } });
        expect(res.status, res.text).toBe(200);
        expect(res.body).toMatchObject({ status: 'success', exit_code: 0, started_at: null });
        expect(await getLogs(s, a.token, pending.id)).toMatchObject({ stdout: '', stderr: 'from admin', exit_code: 0 });
        expect((await s.request('POST', `/jobs/${running.id}/cancel`, { token: a.token })).status).toBe(200);
        expect(await groupGone(pgid, 5000)).toBe(true);
      } finally {
        await s.request('PATCH', `/users/${a.id}`, { token: s.adminToken, body: { max_concurrent_jobs: null } });
      }
    });

    it('cancel of a pending job is immediate and it never runs; purge of a live job is 409', async () => {
      await s.request('PATCH', `/users/${a.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 1 } });
      try {
        const { job: running, pgid } = await holdGroup(a.token);
        const pending = await submit(s, a.token, { command: ['sh', '-c', 'echo ran > ran'] });
        expect((await getJob(s, a.token, pending.id)).status).toBe('pending');

        const purgePending = await s.request('DELETE', `/jobs/${pending.id}/purge`, { token: a.token });
        expect(purgePending.status).toBe(409);
        const purgeRunning = await s.request('DELETE', `/jobs/${running.id}/purge`, { token: a.token });
        expect(purgeRunning.status).toBe(409);
        expect(typeof purgeRunning.body.detail).toBe('string');
        expect(processGroupAlive(pgid)).toBe(true);

        const res = await s.request('POST', `/jobs/${pending.id}/cancel`, { token: a.token });
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ status: 'canceled', started_at: null });

        expect((await s.request('POST', `/jobs/${running.id}/cancel`, { token: a.token })).status).toBe(200);
        // The freed slot must not go to the canceled job.
        const other = await submit(s, a.token, { command: ['true'] });
        await waitTerminal(s, a.token, other.id);
        expect(await getJob(s, a.token, pending.id)).toMatchObject({ status: 'canceled', started_at: null });
        expect(existsSync(join(pending.working_dir, 'ran'))).toBe(false);
      } finally {
        await s.request('PATCH', `/users/${a.id}`, { token: s.adminToken, body: { max_concurrent_jobs: null } });
      }
    });

    it('cancel and force-complete of a terminal job are 409; purge of a terminal job is 204, then the job and its logs are 404', async () => {
      const job = await submit(s, a.token, { command: ['sh', '-c', 'echo bye'] });
      const done = await waitTerminal(s, a.token, job.id);
      expect(done.status).toBe('success');

      const cancel = await s.request('POST', `/jobs/${job.id}/cancel`, { token: a.token });
      expect(cancel.status).toBe(409);
      expect(typeof cancel.body.detail).toBe('string');
      const force = await s.request('POST', `/jobs/${job.id}/force-complete`, { token: s.adminToken, body: { status: 'failed' } });
      expect(force.status).toBe(409);
      expect(await getJob(s, a.token, job.id)).toMatchObject({ status: 'success', exit_code: 0 });
      expect((await getLogs(s, a.token, job.id)).stdout).toBe('bye\n');

      const purge = await s.request('DELETE', `/jobs/${job.id}/purge`, { token: a.token });
      expect(purge.status).toBe(204);
      expect(purge.text).toBe('');
      for (const path of [`/jobs/${job.id}`, `/jobs/${job.id}/logs`]) {
        const res = await s.request('GET', path, { token: a.token });
        expect(res.status).toBe(404);
        expect(res.body).toEqual({ detail: expect.any(String) });
      }
      expect((await s.request('GET', `/jobs/${job.id}`, { token: s.adminToken })).status).toBe(404);
      expect((await s.request('DELETE', `/jobs/${job.id}/purge`, { token: a.token })).status).toBe(404);
      const list = (await s.request('GET', '/jobs?limit=100', { token: a.token })).body as JobRead[];
      expect(list.map((j) => j.id)).not.toContain(job.id);
    });
  });
});
