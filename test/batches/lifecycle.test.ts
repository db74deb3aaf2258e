// A batch's life: status derived from its jobs as they change, cancel and
// force-complete of a batch with running and pending jobs (processes gone),
// and delete (409 while live, then batch, jobs, logs and run dirs gone).
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { startServer, type TestServer } from '../helpers/server.js';
import {
  counts, createBatch, expectBatchRead, expectJobRead, gated, getBatch, groupAlive, isDone, newGate, openGate, pgidOf,
  SLEEPER, runDir, waitBatch, waitJob, type BatchRead, type JobRead, type User,
} from './helpers.js';

describe.each(PROVIDERS)('batch lifecycle on %s', (provider) => {
  let s: TestServer;
  // Two users (each costs a password hash): `one` with a limit of 1 and `two`
  // with a limit of 2. Every test leaves their jobs terminal.
  let one: User, two: User;
  let u: Record<'derive' | 'partial' | 'mixed' | 'cancel' | 'force' | 'del', User>;
  beforeAll(async () => {
    // Worker slots above the users' limits: only per-user limits hold jobs back
    // here (the worker cap is exercised in fairness.test.ts).
    s = await startServer(provider, { WORKER_CONCURRENCY: '16' });
    [one, two] = await Promise.all([s.user('operator', { max_concurrent_jobs: 1 }), s.user('operator', { max_concurrent_jobs: 2 })]);
    u = { derive: one, partial: one, del: one, mixed: two, cancel: two, force: two };
  });
  afterAll(async () => { await s?.stop(); });

  const byName = (b: BatchRead) => Object.fromEntries(b.jobs!.map((j) => [j.name, j])) as Record<string, JobRead>;

  describe('status derivation', () => {
    it('pending while none started, running while one runs, failed when one failed; job_counts follow', async () => {
      const { token } = u.derive;
      const g0 = newGate();
      const gA = newGate();
      // The user's only slot is held by a job outside the batch.
      const blocker = await s.request('POST', '/jobs', { token, body: { name: 'blocker', command: gated(g0) } });
      expect(blocker.status).toBe(202);
      await waitJob(s, token, blocker.body.id, (j) => j.status === 'running');

      const b = await createBatch(s, token, { name: 'derive', jobs: [{ name: 'a', command: gated(gA) }, { name: 'b', command: ['true'] }, { name: 'c', command: ['sh', '-c', 'exit 7'] }] });
      expect(b.status).toBe('pending');
      expect(b.job_counts).toEqual(counts({ pending: 3 }));
      const pending = await getBatch(s, token, b.id);
      expect(pending.status).toBe('pending');
      expect(pending.job_counts).toEqual(counts({ pending: 3 }));
      expect(pending.jobs!.every((j) => j.status === 'pending' && j.started_at === null)).toBe(true);
      const gq = await s.graphql(`query($id: ID!) { batch(id: $id) { status jobCounts { pending total } } }`, { id: b.id }, token);
      expect(gq.data.batch).toEqual({ status: 'PENDING', jobCounts: { pending: 3, total: 3 } });

      openGate(g0);
      const running = await waitBatch(s, token, b.id, (x) => x.job_counts.running === 1);
      expect(running.status).toBe('running');
      expect(running.job_counts).toEqual(counts({ running: 1, pending: 2 }));
      expect(byName(running).a!.status).toBe('running');
      const listed = (await s.request('GET', '/job-batches', { token })).body.find((x: BatchRead) => x.id === b.id);
      expect(listed).toMatchObject({ status: 'running', job_counts: counts({ running: 1, pending: 2 }) });
      expect((await s.graphql(`query($id: ID!) { batch(id: $id) { status } }`, { id: b.id }, token)).data.batch.status).toBe('RUNNING');

      openGate(gA);
      const done = await waitBatch(s, token, b.id, isDone);
      expect(done.status).toBe('failed');
      expect(done.job_counts).toEqual(counts({ success: 2, failed: 1 }));
      expect(byName(done).c).toMatchObject({ status: 'failed', exit_code: 7 });
      // Jobs of a user ran in submission order, one at a time.
      const starts = done.jobs!.map((j) => Date.parse(j.started_at!));
      expect([...starts].sort((x, y) => x - y)).toEqual(starts);
    });

    it('running while some are pending after others ended; canceled when one was canceled and none failed', async () => {
      const { token } = u.partial;
      const g0 = newGate();
      const blocker = await s.request('POST', '/jobs', { token, body: { name: 'blocker', command: gated(g0) } });
      await waitJob(s, token, blocker.body.id, (j) => j.status === 'running');
      const b = await createBatch(s, token, { name: 'partial', jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['true'] }] });

      const cancel = await s.request('POST', `/jobs/${b.jobs![0]!.id}/cancel`, { token });
      expect(cancel.status).toBe(200);
      expect(cancel.body).toMatchObject({ status: 'canceled', batch_id: b.id });
      const mid = await getBatch(s, token, b.id);
      expect(mid.job_counts).toEqual(counts({ canceled: 1, pending: 1 }));
      expect(mid.status).toBe('running');

      openGate(g0);
      const done = await waitBatch(s, token, b.id, isDone);
      expect(done.job_counts).toEqual(counts({ canceled: 1, success: 1 }));
      expect(done.status).toBe('canceled');
    });

    it('success only when every job succeeded; failed wins over canceled; a spawn failure is a failure', async () => {
      const { token } = u.mixed;
      const ok = await createBatch(s, token, { name: 'ok', jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['echo', 'x'] }, { name: 'c', command: ['sh', '-c', 'exit 0'] }] });
      const g = newGate();
      const mixed = await createBatch(s, token, { name: 'mixed', jobs: [{ name: 'fails', command: ['false'] }, { name: 'held', command: gated(g) }] });
      const spawn = await createBatch(s, token, { name: 'spawn', jobs: [{ name: 'ok', command: ['true'] }, { name: 'missing', command: ['/definitely/not/a/program'] }] });

      const okDone = await waitBatch(s, token, ok.id, isDone);
      expect(okDone.status).toBe('success');
      expect(okDone.job_counts).toEqual(counts({ success: 3 }));

      const mid = await waitBatch(s, token, mixed.id, (x) => x.job_counts.failed === 1 && x.job_counts.running === 1);
      expect(mid.status).toBe('running');
      const held = byName(mid).held!;
      expect((await s.request('POST', `/jobs/${held.id}/cancel`, { token })).status).toBe(200);
      const mixedDone = await waitBatch(s, token, mixed.id, isDone);
      expect(mixedDone.job_counts).toEqual(counts({ failed: 1, canceled: 1 }));
      expect(mixedDone.status).toBe('failed');

      const spawnDone = await waitBatch(s, token, spawn.id, isDone);
      expect(spawnDone.status).toBe('failed');
      expect(spawnDone.job_counts).toEqual(counts({ success: 1, failed: 1 }));
      expect(byName(spawnDone).missing!.error).toMatch(/ENOENT/);
    });
  });

  it('cancel mid-run: running and pending jobs end canceled, nothing of the running ones is left, pending ones never start', async () => {
    const { token, id: ownerId } = u.cancel;
    const b = await createBatch(s, token, { name: 'cancel-me', jobs: Array.from({ length: 6 }, (_, i) => ({ name: `s${i}`, command: SLEEPER })) });
    const mid = await waitBatch(s, token, b.id, (x) => x.job_counts.running === 2);
    expect(mid.job_counts).toEqual(counts({ running: 2, pending: 4 }));
    const runningJobs = mid.jobs!.filter((j) => j.status === 'running');
    expect(runningJobs.map((j) => j.name)).toEqual(['s0', 's1']);
    const pgids = await Promise.all(runningJobs.map((j) => pgidOf(j.id)));
    for (const pgid of pgids) expect(groupAlive(pgid)).toBe(true);

    const res = await s.request('POST', `/job-batches/${b.id}/cancel`, { token });
    expect(res.status).toBe(200);
    const after = res.body as BatchRead;
    expectBatchRead(after, true);
    expect(after.status).toBe('canceled');
    expect(after.job_counts).toEqual(counts({ canceled: 6 }));
    expect(after.jobs!.map((j) => j.name)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
    for (const j of after.jobs!) {
      expectJobRead(j, { batchId: b.id, ownerId });
      expect(j.status, j.name).toBe('canceled');
      expect(j.finished_at, j.name).toBeTruthy();
    }
    // The two that ran: their whole process groups (the shell and its background sleep) are gone.
    for (const pgid of pgids) expect(groupAlive(pgid), `process group ${pgid}`).toBe(false);
    // The four that waited never started.
    for (const j of after.jobs!.slice(2)) {
      expect(j.started_at, j.name).toBeNull();
      expect(existsSync(runDir(s, j.id)), j.name).toBe(false);
    }

    // And stay that way: nothing is picked up later.
    await new Promise((r) => setTimeout(r, 1200));
    const later = await getBatch(s, token, b.id);
    expect(later.status).toBe('canceled');
    expect(later.jobs!.map((j) => [j.status, j.started_at])).toEqual(after.jobs!.map((j) => [j.status, j.started_at]));
    // Terminal jobs have logs.
    expect((await s.request('GET', `/jobs/${after.jobs![0]!.id}/logs`, { token })).status).toBe(200);
    // The user's slots are free again.
    const next = await s.request('POST', '/jobs', { token, body: { name: 'after', command: ['true'] } });
    await waitJob(s, token, next.body.id, (j) => j.status === 'success');
  });

  it('force-complete: admin only; {"status":"failed"} fails every non-terminal job and stops the running ones', async () => {
    const { token, id: ownerId } = u.force;
    const b = await createBatch(s, token, { name: 'force-me', jobs: [{ name: 'quick', command: ['true'] }, ...Array.from({ length: 4 }, (_, i) => ({ name: `s${i}`, command: SLEEPER }))] });
    const mid = await waitBatch(s, token, b.id, (x) => x.job_counts.success === 1 && x.job_counts.running === 2);
    expect(mid.job_counts).toEqual(counts({ success: 1, running: 2, pending: 2 }));
    const runningJobs = mid.jobs!.filter((j) => j.status === 'running');
    const pgids = await Promise.all(runningJobs.map((j) => pgidOf(j.id)));

    // The owner, an operator, may see the batch but not force it: 403, nothing changes.
    const own = await s.request('POST', `/job-batches/${b.id}/force-complete`, { token, body: { status: 'failed' } });
    expect(own.status).toBe(403);
    expect(typeof own.body.detail).toBe('string');
    const gqlOwn = await s.graphql(`mutation($id: ID!) { forceCompleteBatch(id: $id, input: { status: FAILED }) { id } }`, { id: b.id }, token);
    expect(gqlOwn.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // Bodies that are not a terminal status.
    for (const body of [{ status: 'running' }, { status: 'pending' }, { status: 'bogus' }, {}, { status: 'failed', exit_code: 3 }]) {
      const r = await s.request('POST', `/job-batches/${b.id}/force-complete`, { token: s.adminToken, body });
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(Array.isArray(r.body.detail)).toBe(true);
      expect(r.body.detail[0].loc[0]).toBe('body');
    }
    const unchanged = await getBatch(s, token, b.id);
    expect(unchanged.job_counts).toEqual(counts({ success: 1, running: 2, pending: 2 }));
    for (const pgid of pgids) expect(groupAlive(pgid)).toBe(true);

    const res = await s.request('POST', `/job-batches/${b.id}/force-complete`, { token: s.adminToken, body: { status: 'failed' } });
    expect(res.status).toBe(200);
    const after = res.body as BatchRead;
    expectBatchRead(after, true);
    expect(after.status).toBe('failed');
    expect(after.job_counts).toEqual(counts({ success: 1, failed: 4 }));
    expect(after.jobs!.map((j) => j.name)).toEqual(['quick', 's0', 's1', 's2', 's3']);
    // The job that had finished keeps its outcome.
    expect(after.jobs![0]).toMatchObject({ status: 'success', exit_code: 0, error: null });
    for (const j of after.jobs!.slice(1)) {
      expectJobRead(j, { batchId: b.id, ownerId });
      expect(j.status, j.name).toBe('failed');
      expect(j.error, j.name).toBeTruthy();
      expect(j.finished_at, j.name).toBeTruthy();
    }
    for (const j of after.jobs!.slice(3)) expect(j.started_at, j.name).toBeNull();
    for (const pgid of pgids) expect(groupAlive(pgid), `process group ${pgid}`).toBe(false);
    const again = await getBatch(s, token, b.id);
    expect(again.job_counts).toEqual(counts({ success: 1, failed: 4 }));
  });

  it('delete: 409 while a job is running or pending; afterwards batch, jobs, logs and run dirs are gone (own working dirs stay)', async () => {
    const { token } = u.del;
    const keep = join(s.db.dataDir, 'workspace', 'keep-me');
    mkdirSync(keep, { recursive: true });
    // Jobs run as a uid of their own: an administrator makes shared workspaces writable through a jobs group (JOB_GROUP).
    chmodSync(keep, 0o777);
    const g = newGate();
    const b = await createBatch(s, token, {
      name: 'delete-me',
      jobs: [
        { name: 'hello', command: ['sh', '-c', 'echo hello; echo oops >&2; echo data > out.txt'] },
        { name: 'held', command: gated(g) },
        { name: 'in-workspace', command: ['sh', '-c', 'echo mine > mine.txt'], working_dir: keep },
      ],
    });
    await waitBatch(s, token, b.id, (x) => x.job_counts.success === 1 && x.job_counts.running === 1);
    const statsBefore = (await s.request('GET', '/jobs/stats', { token })).body;

    const conflict = await s.request('DELETE', `/job-batches/${b.id}`, { token });
    expect(conflict.status).toBe(409);
    expect(typeof conflict.body.detail).toBe('string');
    const gqlConflict = await s.graphql(`mutation($id: ID!) { deleteBatch(id: $id) }`, { id: b.id }, token);
    expect(gqlConflict.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    // Nothing was removed.
    const still = await getBatch(s, token, b.id);
    expect(still.jobs!.map((j) => j.id)).toEqual(b.jobs!.map((j) => j.id));
    expect(still.job_counts).toEqual(counts({ success: 1, running: 1, pending: 1 }));
    expect((await s.request('GET', `/jobs/${b.jobs![0]!.id}/logs`, { token })).body.stdout).toBe('hello\n');

    openGate(g);
    await waitBatch(s, token, b.id, (x) => x.status === 'success');
    const dirs = b.jobs!.slice(0, 2).map((j) => runDir(s, j.id));
    for (const d of dirs) expect(existsSync(d), d).toBe(true);
    expect(existsSync(join(dirs[0]!, 'out.txt'))).toBe(true);
    expect(existsSync(join(keep, 'mine.txt'))).toBe(true);

    const del = await s.request('DELETE', `/job-batches/${b.id}`, { token });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');

    expect((await s.request('GET', `/job-batches/${b.id}`, { token })).status).toBe(404);
    for (const j of b.jobs!) {
      expect((await s.request('GET', `/jobs/${j.id}`, { token })).status, j.name).toBe(404);
      expect((await s.request('GET', `/jobs/${j.id}/logs`, { token })).status, j.name).toBe(404);
      expect((await s.request('GET', `/jobs/${j.id}`, { token: s.adminToken })).status, j.name).toBe(404);
    }
    for (const d of dirs) expect(existsSync(d), d).toBe(false);
    // A working directory the user named is theirs: it stays.
    expect(existsSync(join(keep, 'mine.txt'))).toBe(true);
    const list = (await s.request('GET', '/job-batches', { token })).body as BatchRead[];
    expect(list.map((x) => x.id)).not.toContain(b.id);
    expect((await s.request('GET', `/jobs?batch_id=${b.id}&limit=100`, { token })).body).toEqual([]);
    const statsAfter = (await s.request('GET', '/jobs/stats', { token })).body;
    expect(statsAfter.total).toBe(statsBefore.total - 3);
    expect((await s.request('DELETE', `/job-batches/${b.id}`, { token })).status).toBe(404);

    // GraphQL deleteBatch on a finished (canceled) batch.
    const g2 = newGate();
    const other = await createBatch(s, token, { name: 'gql-delete', jobs: [{ name: 'held', command: gated(g2) }] });
    expect((await s.request('POST', `/job-batches/${other.id}/cancel`, { token })).status).toBe(200);
    const gqlDel = await s.graphql(`mutation($id: ID!) { deleteBatch(id: $id) }`, { id: other.id }, token);
    expect(gqlDel).toEqual({ data: { deleteBatch: true } });
    const gone = await s.graphql(`query($id: ID!) { batch(id: $id) { id } }`, { id: other.id }, token);
    expect(gone.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await s.request('GET', `/jobs/${other.jobs![0]!.id}`, { token })).status).toBe(404);
  });
});
