// The viewer role (issue #12): a read-only observer of ALL jobs, batches,
// logs, stats and live events, who never sees another user's env values
// (keys kept, values "***"), and who may change nothing (403). Operators
// keep seeing only their own (another's job is 404, as if missing).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { getJob, getLogs, jobGate, submit, waitRunning, waitTerminal, type JobRead } from '../helpers/jobs.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { JOB_LOG, linesOf, track, withTimeout, wsClient, type Chunk, type WsClient } from '../helpers/ws.js';
import { codes, expectMasked, masked, openGate, waitForGate } from './identitySupport.js';

type User = Awaited<ReturnType<TestServer['user']>>;

const ENV_A = { API_KEY: 'a-very-secret-value', MODE: 'prod' };
const ENV_B = { DB_PASSWORD: 'b-hunter2', REGION: 'eu' };
const JOB_EVENTS_ENV = 'subscription ($batchId: ID) { jobEvents(batchId: $batchId) { id status ownerId env } }';
const JOB_UPDATED_ENV = 'subscription ($id: ID!) { jobUpdated(id: $id) { id status env } }';

interface BatchWithJobs { id: string; owner_id: string; jobs: JobRead[] }

describe.each(PROVIDERS)('the viewer role on %s', (provider) => {
  let s: TestServer;
  let opA: User;
  let opB: User;
  let viewer: User;
  let jobA: JobRead;
  let jobB: JobRead;
  let batchA: BatchWithJobs;
  const open: WsClient[] = [];
  const connect = (token: string | null) => {
    const c = wsClient(s, token);
    open.push(c);
    return c;
  };
  const get = (path: string, token: string) => s.request('GET', path, { token });

  beforeAll(async () => {
    s = await startServer(provider);
    [opA, opB, viewer] = await Promise.all([s.user('operator'), s.user('operator'), s.user('viewer')]);
    jobA = await submit(s, opA.token, { name: 'a-job', command: ['sh', '-c', 'echo hello-from-a; echo err-from-a >&2'], env: ENV_A });
    jobB = await submit(s, opB.token, { name: 'b-job', command: ['echo', 'hello-from-b'], env: ENV_B });
    const res = await s.request('POST', '/job-batches', {
      token: opA.token,
      body: { name: 'batch-a', jobs: [{ name: 'b1', command: ['true'], env: ENV_A }, { name: 'b2', command: ['true'], env: { ONLY: 'one' } }] },
    });
    expect(res.status, res.text).toBe(201);
    batchA = res.body;
    for (const [tok, id] of [[opA.token, jobA.id], [opB.token, jobB.id], ...batchA.jobs.map((j) => [opA.token, j.id])] as [string, string][]) {
      await waitTerminal(s, tok, id);
    }
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.dispose()));
    await s?.stop();
  });

  describe('sees everyone\'s jobs, without their env values', () => {
    it('REST lists and stats cover all users\' jobs and batches, as for an admin', async () => {
      const asViewer = await get('/jobs', viewer.token);
      const asAdmin = await get('/jobs', s.adminToken);
      expect(asViewer.status, asViewer.text).toBe(200);
      const ids = (asViewer.body as JobRead[]).map((j) => j.id);
      expect(ids).toEqual((asAdmin.body as JobRead[]).map((j) => j.id));
      expect(ids).toEqual(expect.arrayContaining([jobA.id, jobB.id, ...batchA.jobs.map((j) => j.id)]));
      const byId = new Map((asAdmin.body as JobRead[]).map((j) => [j.id, j]));
      for (const j of asViewer.body as JobRead[]) {
        expectMasked(j.env, byId.get(j.id)!.env, `GET /jobs: env of ${j.name}`);
        expect({ ...j, env: null }).toEqual({ ...byId.get(j.id)!, env: null });
      }
      expect(asViewer.text).not.toContain(ENV_A.API_KEY);
      expect(asViewer.text).not.toContain(ENV_B.DB_PASSWORD);

      const filtered = await get(`/jobs?batch_id=${batchA.id}`, viewer.token);
      expect((filtered.body as JobRead[]).map((j) => j.id)).toEqual(batchA.jobs.map((j) => j.id));

      const batches = await get('/job-batches', viewer.token);
      expect(batches.status).toBe(200);
      expect((batches.body as { id: string }[]).map((b) => b.id)).toEqual(((await get('/job-batches', s.adminToken)).body as { id: string }[]).map((b) => b.id));
      expect((batches.body as { id: string }[]).map((b) => b.id)).toContain(batchA.id);

      const stats = await get('/jobs/stats', viewer.token);
      expect(stats.status).toBe(200);
      expect(stats.body).toEqual((await get('/jobs/stats', s.adminToken)).body);
      expect(stats.body.total).toBe(4);
      // An operator's stats count only their own.
      expect((await get('/jobs/stats', opB.token)).body.total).toBe(1);
    });

    it('REST: another user\'s job, its logs and its batch; env masked for the viewer, shown to the owner and admins', async () => {
      const v = await get(`/jobs/${jobA.id}`, viewer.token);
      expect(v.status, v.text).toBe(200);
      expect(v.body).toMatchObject({ id: jobA.id, owner_id: opA.id, status: 'success', name: 'a-job' });
      expectMasked(v.body.env, ENV_A, 'viewer GET /jobs/{id}');
      expect((await getJob(s, opA.token, jobA.id)).env).toEqual(ENV_A);
      expect((await getJob(s, s.adminToken, jobA.id)).env).toEqual(ENV_A);

      const logs = await getLogs(s, viewer.token, jobA.id);
      expect(logs).toMatchObject({ job_id: jobA.id, stdout: 'hello-from-a\n', stderr: 'err-from-a\n' });

      const batch = await get(`/job-batches/${batchA.id}`, viewer.token);
      expect(batch.status, batch.text).toBe(200);
      expect(batch.body.owner_id).toBe(opA.id);
      expect(batch.body.jobs.map((j: JobRead) => j.env)).toEqual([masked(ENV_A), masked({ ONLY: 'one' })]);
      expect(batch.text).not.toContain(ENV_A.API_KEY);
      const own = await get(`/job-batches/${batchA.id}`, opA.token);
      expect(own.body.jobs.map((j: JobRead) => j.env)).toEqual([ENV_A, { ONLY: 'one' }]);
      const admin = await get(`/job-batches/${batchA.id}`, s.adminToken);
      expect(admin.body.jobs.map((j: JobRead) => j.env)).toEqual([ENV_A, { ONLY: 'one' }]);

      // The REST log stream follows another user's job too.
      const stream = await get(`/jobs/${jobA.id}/logs/stream`, viewer.token);
      expect(stream.status).toBe(200);
      expect(stream.text).toContain('hello-from-a');
    });

    it('GraphQL jobs, job, batches, batch and jobStats: all users; env masked', async () => {
      const q = await s.graphql('{ jobs { nodes { id ownerId env } } batches(first: 5) { nodes { id ownerId jobs { id env } } } jobStats { total success } }', {}, viewer.token);
      expect(q.errors, JSON.stringify(q.errors)).toBeUndefined();
      const jobs = q.data.jobs.nodes as { id: string; ownerId: string; env: Record<string, string> }[];
      expect(jobs.map((j) => j.id)).toEqual(expect.arrayContaining([jobA.id, jobB.id]));
      expect(new Set(jobs.map((j) => j.ownerId))).toEqual(new Set([opA.id, opB.id]));
      expect(jobs.find((j) => j.id === jobA.id)!.env).toEqual(masked(ENV_A));
      expect(jobs.find((j) => j.id === jobB.id)!.env).toEqual(masked(ENV_B));
      const batch = (q.data.batches.nodes as { id: string; jobs: { env: Record<string, string> }[] }[]).find((b) => b.id === batchA.id)!;
      expect(batch.jobs.map((j) => j.env)).toEqual([masked(ENV_A), masked({ ONLY: 'one' })]);
      expect(q.data.jobStats).toEqual({ total: 4, success: 4 });
      expect(JSON.stringify(q)).not.toContain(ENV_B.DB_PASSWORD);

      const one = await s.graphql('query ($id: ID!) { job(id: $id) { id env logs { stdout } } }', { id: jobB.id }, viewer.token);
      expect(one.errors).toBeUndefined();
      expect(one.data.job).toEqual({ id: jobB.id, env: masked(ENV_B), logs: { stdout: 'hello-from-b\n' } });
      const b = await s.graphql('query ($id: ID!) { batch(id: $id) { id jobs { env } } }', { id: batchA.id }, viewer.token);
      expect(b.data?.batch.jobs.map((j: { env: unknown }) => j.env)).toEqual([masked(ENV_A), masked({ ONLY: 'one' })]);

      const owner = await s.graphql('query ($id: ID!) { job(id: $id) { env } }', { id: jobB.id }, opB.token);
      expect(owner.data.job.env).toEqual(ENV_B);
      const admin = await s.graphql('query ($id: ID!) { job(id: $id) { env } }', { id: jobB.id });
      expect(admin.data.job.env).toEqual(ENV_B);
    });

    it('graphql-ws: jobEvents and jobUpdated deliver other users\' jobs, env masked for the viewer only; jobLog follows their output', async () => {
      const gate = jobGate('viewer-events');
      const held = await submit(s, opB.token, { name: 'held', command: waitForGate(gate, 'echo released'), env: ENV_B });
      try {
        const before = s.app.bus.listenerCount();
        type Ev = { id: string; status: string; ownerId: string; env: Record<string, string> };
        const viewerEvents = track<Ev>(connect(viewer.token).client, JOB_EVENTS_ENV, {});
        const adminEvents = track<Ev>(connect(s.adminToken).client, JOB_EVENTS_ENV, {});
        const ownerEvents = track<Ev>(connect(opB.token).client, JOB_EVENTS_ENV, {});
        // The three jobEvents subscriptions are live before anything happens.
        await waitFor(() => s.app.bus.listenerCount() >= before + 3, 10_000, 5);
        const updates = track<{ id: string; status: string; env: Record<string, string> }>(connect(viewer.token).client, JOB_UPDATED_ENV, { id: held.id });
        const log = track<Chunk>(connect(viewer.token).client, JOB_LOG, { id: held.id });
        await waitFor(() => updates.values.length > 0 || updates.isDone(), 10_000);
        expect(updates.errors, 'viewer jobUpdated on another user\'s job').toEqual([]);
        // A job submitted by another user while the viewer watches.
        const fresh = await submit(s, opA.token, { name: 'fresh', command: ['true'], env: ENV_A });
        openGate(gate);

        const terminal = (t: { values: Ev[] }, id: string) => t.values.some((v) => v.id === id && v.status === 'SUCCESS');
        await waitFor(() => [viewerEvents, adminEvents].every((t) => terminal(t, held.id) && terminal(t, fresh.id)) && terminal(ownerEvents, held.id), 30_000);
        expect(viewerEvents.errors).toEqual([]);
        expect(viewerEvents.values.filter((v) => v.id === held.id).every((v) => v.ownerId === opB.id)).toBe(true);
        for (const v of viewerEvents.values) expectMasked(v.env, v.id === fresh.id ? ENV_A : ENV_B, `viewer jobEvents ${v.id} ${v.status}`);
        for (const v of adminEvents.values.filter((e) => e.id === held.id || e.id === fresh.id)) {
          expect(v.env, 'admin jobEvents').toEqual(v.id === fresh.id ? ENV_A : ENV_B);
        }
        for (const v of ownerEvents.values.filter((e) => e.id === held.id)) expect(v.env, 'owner jobEvents').toEqual(ENV_B);
        // The owner's stream stays their own.
        expect(ownerEvents.values.some((v) => v.id === fresh.id)).toBe(false);

        expect(await withTimeout(updates.done, 30_000, 'jobUpdated')).toBe('complete');
        expect(updates.errors).toEqual([]);
        expect(updates.values.at(-1)!.status).toBe('SUCCESS');
        for (const v of updates.values) expectMasked(v.env, ENV_B, `viewer jobUpdated ${v.status}`);

        expect(await withTimeout(log.done, 30_000, 'jobLog')).toBe('complete');
        expect(log.errors).toEqual([]);
        expect(linesOf(log.values)).toEqual(['released']);
        for (const t of [viewerEvents, adminEvents, ownerEvents]) t.stop();
      } finally {
        openGate(gate);
      }
    });
  });

  describe('may change nothing', () => {
    it('403 on submit, cancel, purge, batch create/cancel/delete, force-complete, users and limits; nothing changes', async () => {
      const gate = jobGate('viewer-403');
      const running = await submit(s, opA.token, { name: 'running', command: waitForGate(gate) });
      const runningBatch = await s.request('POST', '/job-batches', { token: opA.token, body: { name: 'held', jobs: [{ name: 'h', command: waitForGate(gate) }] } });
      expect(runningBatch.status).toBe(201);
      try {
        await waitRunning(s, opA.token, running.id);
        const calls: [string, string, unknown?][] = [
          ['POST', '/jobs', { name: 'nope', command: ['true'] }],
          ['POST', `/jobs/${running.id}/cancel`],
          ['DELETE', `/jobs/${jobA.id}/purge`],
          ['POST', `/jobs/${running.id}/force-complete`, { status: 'failed' }],
          ['POST', '/job-batches', { name: 'nope', jobs: [{ name: 'j', command: ['true'] }] }],
          ['POST', `/job-batches/${runningBatch.body.id}/cancel`],
          ['POST', `/job-batches/${runningBatch.body.id}/force-complete`, { status: 'failed' }],
          ['DELETE', `/job-batches/${batchA.id}`],
          ['GET', '/users'],
          ['POST', '/users', { email: 'sneaky@example.com', password: 'Sneaky-pass-1', role: 'admin' }],
          ['GET', `/users/${opA.id}`],
          ['PATCH', `/users/${opA.id}`, { is_active: false }],
          ['GET', '/admin/limits'],
          ['POST', '/admin/limits/global', { max_concurrent_jobs: 1 }],
          ['POST', `/admin/limits/users/${opA.id}`, { max_concurrent_jobs: 1 }],
          ['GET', '/admin/isolation'],
          ['GET', '/admin/audit'],
        ];
        const failures: string[] = [];
        for (const [method, path, body] of calls) {
          const res = await s.request(method, path, { token: viewer.token, body });
          if (res.status !== 403 || typeof res.body?.detail !== 'string') failures.push(`${method} ${path}: ${res.status} ${res.text.slice(0, 120)}`);
        }
        expect(failures).toEqual([]);

        const gqlCalls: [string, Record<string, unknown>][] = [
          ['mutation { submitJob(input: {name: "nope", command: ["true"]}) { id } }', {}],
          ['mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id: running.id }],
          ['mutation ($id: ID!) { purgeJob(id: $id) }', { id: jobA.id }],
          ['mutation ($id: ID!) { forceCompleteJob(id: $id, input: {status: FAILED}) { id } }', { id: running.id }],
          ['mutation { createBatch(input: {name: "nope", jobs: [{name: "j", command: ["true"]}]}) { id } }', {}],
          ['mutation ($id: ID!) { cancelBatch(id: $id) { id } }', { id: runningBatch.body.id }],
          ['mutation ($id: ID!) { deleteBatch(id: $id) }', { id: batchA.id }],
          ['{ users { id } }', {}],
          ['{ limits { defaultMaxConcurrentJobs } }', {}],
          ['mutation { setDefaultJobLimit(max: 1) { defaultMaxConcurrentJobs } }', {}],
        ];
        for (const [query, variables] of gqlCalls) {
          expect(codes(await s.graphql(query, variables, viewer.token)), query).toEqual(['FORBIDDEN']);
        }

        // Nothing changed.
        expect((await getJob(s, opA.token, running.id)).status).toBe('running');
        expect((await getJob(s, opA.token, jobA.id)).status).toBe('success');
        expect((await get(`/job-batches/${batchA.id}`, opA.token)).status).toBe(200);
        expect((await get(`/users/${opA.id}`, s.adminToken)).body.is_active).toBe(true);
        expect((await get('/admin/limits', s.adminToken)).body.overrides).toEqual([]);
        expect(((await get('/jobs', s.adminToken)).body as JobRead[]).some((j) => j.name === 'nope')).toBe(false);
        expect(((await get('/users', s.adminToken)).body as { email: string }[]).some((u) => u.email === 'sneaky@example.com')).toBe(false);
      } finally {
        openGate(gate);
      }
      await waitTerminal(s, opA.token, running.id);
      await waitTerminal(s, opA.token, runningBatch.body.jobs[0].id);
    });
  });

  describe('operators see only their own', () => {
    it('another operator\'s job or batch is 404 on every read and change; lists hold only their own', async () => {
      for (const path of [`/jobs/${jobA.id}`, `/jobs/${jobA.id}/logs`, `/jobs/${jobA.id}/logs/stream`, `/job-batches/${batchA.id}`]) {
        const res = await get(path, opB.token);
        expect(res.status, path).toBe(404);
        expect(res.text).not.toContain(ENV_A.API_KEY);
      }
      expect((await s.request('POST', `/jobs/${jobA.id}/cancel`, { token: opB.token })).status).toBe(404);
      expect((await s.request('DELETE', `/jobs/${jobA.id}/purge`, { token: opB.token })).status).toBe(404);
      expect((await s.request('POST', `/job-batches/${batchA.id}/cancel`, { token: opB.token })).status).toBe(404);
      expect((await s.request('DELETE', `/job-batches/${batchA.id}`, { token: opB.token })).status).toBe(404);
      const list = await get('/jobs', opB.token);
      expect((list.body as JobRead[]).every((j) => j.owner_id === opB.id)).toBe(true);
      expect((list.body as JobRead[]).map((j) => j.id)).toContain(jobB.id);
      // Their own env values they see.
      expect((list.body as JobRead[]).find((j) => j.id === jobB.id)!.env).toEqual(ENV_B);
      expect(((await get('/job-batches', opB.token)).body as { id: string }[]).map((b) => b.id)).not.toContain(batchA.id);
      expect(codes(await s.graphql('query ($id: ID!) { job(id: $id) { id } }', { id: jobA.id }, opB.token))).toEqual(['NOT_FOUND']);
      const gqlJobs = await s.graphql('{ jobs { nodes { ownerId } } }', {}, opB.token);
      expect(gqlJobs.data.jobs.nodes.every((j: { ownerId: string }) => j.ownerId === opB.id)).toBe(true);
      // Still there for its owner.
      expect((await getJob(s, opA.token, jobA.id)).id).toBe(jobA.id);
    });
  });
});
