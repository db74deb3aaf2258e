// Concurrency limits as users see them: per-user overrides, the global
// default, changes applied at once, submission order, and fairness between
// users. Overlap is computed from the recorded started_at/finished_at.
//
// Most jobs here are "gated": they wait for a gate file to appear, then run
// for a moment. With the gate closed the scheduler's decisions can be
// observed at leisure (who runs, who waits) however slow the machine is;
// opening it lets everything drain through the limits.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { getJob, jobGate, maxOverlap, ms, submit, waitTerminal, type JobRead } from '../helpers/jobs.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

// The worker runs up to 8 jobs: enough for every limit used in the first
// block, so the per-user limits (not the worker) are what those tests observe.
const WORKER_CONCURRENCY = 8;
const GATED = ['sh', '-c', 'while [ ! -e "$GATE" ]; do sleep 0.05; done; sleep 0.2'];

interface Who { id?: string; token: string }

function helpers(get: () => TestServer) {
  let gates = 0;
  return {
    /** A closed gate: a path that does not exist yet, and the function that creates it (not under DATA_DIR, which isolated jobs cannot see). */
    gate() {
      const path = jobGate(`gate-${++gates}`);
      return { path, open: () => writeFileSync(path, '') };
    },
    /** Submits one at a time, so submission order is the order of these requests. */
    async submitGated(who: Who, n: number, gatePath: string, name = 'g'): Promise<JobRead[]> {
      const jobs: JobRead[] = [];
      for (let i = 0; i < n; i++) jobs.push(await submit(get(), who.token, { name: `${name}${i}`, command: GATED, env: { GATE: gatePath } }));
      return jobs;
    },
    /** Waits until exactly `running` of `jobs` run and `pending` wait; then, with `holdMs`, checks it stays so that long. */
    async waitSplit(who: Who, jobs: JobRead[], running: number, pending: number, holdMs = 0) {
      const split = async () => {
        const now = await Promise.all(jobs.map((j) => getJob(get(), who.token, j.id)));
        return { running: now.filter((j) => j.status === 'running').length, pending: now.filter((j) => j.status === 'pending').length };
      };
      let last: { running: number; pending: number } | undefined;
      try {
        await waitFor(async () => {
          last = await split();
          return last.running === running && last.pending === pending;
        }, 20_000, 50);
      } catch {
        throw new Error(`expected ${running} running / ${pending} pending, last saw ${JSON.stringify(last)}`);
      }
      if (holdMs) {
        await new Promise((r) => setTimeout(r, holdMs));
        expect(await split()).toEqual({ running, pending });
      }
    },
    finishAll: (who: Who, jobs: JobRead[], timeoutMs = 30_000) => Promise.all(jobs.map((j) => waitTerminal(get(), who.token, j.id, timeoutMs))),
  };
}

function expectStartedInOrder(done: JobRead[]) {
  for (let i = 1; i < done.length; i++) {
    expect(ms(done[i]!.started_at), `job ${i} started before job ${i - 1}`).toBeGreaterThanOrEqual(ms(done[i - 1]!.started_at));
  }
}

const allSucceeded = (jobs: JobRead[]) => expect(jobs.map((j) => j.status)).toEqual(jobs.map(() => 'success'));

describe.each(PROVIDERS)('job limits on %s', (provider) => {
  let s: TestServer;
  let a: Awaited<ReturnType<TestServer['user']>>;
  // B: a user without an override (the bootstrap admin; creating users is slow).
  let b: { id: string; email: string; token: string };
  const h = helpers(() => s);

  beforeAll(async () => {
    s = await startServer(provider, { WORKER_CONCURRENCY: String(WORKER_CONCURRENCY) });
    a = await s.user('operator');
    b = { ...(await s.graphql('{ me { id email } }')).data.me, token: s.adminToken };
  });
  afterAll(async () => {
    await s?.stop();
  });

  const setUserLimit = async (id: string, max: number | null) => {
    const res = await s.request('PATCH', `/users/${id}`, { token: s.adminToken, body: { max_concurrent_jobs: max } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.max_concurrent_jobs).toBe(max);
  };

  it('a user limit of 2 keeps at most 2 of 6 jobs running; all succeed, started in submission order', async () => {
    await setUserLimit(a.id, 2);
    const gate = h.gate();
    const jobs = await h.submitGated(a, 6, gate.path);
    await h.waitSplit(a, jobs, 2, 4);
    expect(jobs.slice(0, 2).map((j) => j.id).sort()).toEqual(
      (await Promise.all(jobs.map((j) => getJob(s, a.token, j.id)))).filter((j) => j.status === 'running').map((j) => j.id).sort(),
    );
    gate.open();
    const done = await h.finishAll(a, jobs);
    allSucceeded(done);
    expect(maxOverlap(done)).toBe(2);
    expectStartedInOrder(done);
  });

  it('raising the limit mid-run (2 -> 6 while 4 wait) starts the waiting jobs at once', async () => {
    await setUserLimit(a.id, 2);
    const gate = h.gate();
    const jobs = await h.submitGated(a, 6, gate.path);
    await h.waitSplit(a, jobs, 2, 4);
    const changedAt = Date.now();
    await setUserLimit(a.id, 6);
    const started = await Promise.all(jobs.map((j) => waitFor(async () => {
      const now = await getJob(s, a.token, j.id);
      return now.started_at ? now : undefined;
    }, 10_000)));
    for (const j of started.slice(2)) {
      const delay = ms(j.started_at) - changedAt;
      expect(delay, `${j.name} started ${delay} ms after the change`).toBeLessThan(1500);
    }
    gate.open();
    const done = await h.finishAll(a, jobs);
    allSucceeded(done);
    expect(maxOverlap(done)).toBe(6);
    expectStartedInOrder(done);
  });

  it('the global default (POST /admin/limits/global) applies to users without an override', async () => {
    await setUserLimit(a.id, 3);
    try {
      const set = await s.request('POST', '/admin/limits/global', { token: s.adminToken, body: { max_concurrent_jobs: 1 } });
      expect(set.status).toBe(200);
      expect(set.body.default_max_concurrent_jobs).toBe(1);
      expect(set.body.overrides).toContainEqual({ user_id: a.id, email: a.email, max_concurrent_jobs: 3 });
      expect(set.body.overrides.map((o: any) => o.user_id)).not.toContain(b.id);
      expect((await s.request('GET', '/admin/limits', { token: s.adminToken })).body).toEqual(set.body);

      const gate = h.gate();
      const bJobs = await h.submitGated(b, 3, gate.path, 'b');
      const aJobs = await h.submitGated(a, 3, gate.path, 'a');
      await h.waitSplit(b, bJobs, 1, 2); // the default, 1
      await h.waitSplit(a, aJobs, 3, 0); // the override, 3, wins over the default
      gate.open();
      const bDone = await h.finishAll(b, bJobs);
      const aDone = await h.finishAll(a, aJobs);
      allSucceeded([...bDone, ...aDone]);
      expect(maxOverlap(bDone)).toBe(1);
      expect(maxOverlap(aDone)).toBe(3);
      expectStartedInOrder(bDone);
    } finally {
      await s.request('POST', '/admin/limits/global', { token: s.adminToken, body: { max_concurrent_jobs: 4 } });
    }
  });

  it('GraphQL limits, setDefaultJobLimit and setUserJobLimit show and steer scheduling the same way', async () => {
    const LIMITS = 'defaultMaxConcurrentJobs overrides { userId email maxConcurrentJobs }';
    try {
      const def = await s.graphql(`mutation { setDefaultJobLimit(max: 2) { ${LIMITS} } }`);
      expect(def.errors).toBeUndefined();
      expect(def.data.setDefaultJobLimit.defaultMaxConcurrentJobs).toBe(2);
      const q = await s.graphql(`{ limits { ${LIMITS} } }`);
      expect(q.data.limits.defaultMaxConcurrentJobs).toBe(2);
      expect(q.data.limits.overrides.map((o: any) => o.userId)).not.toContain(b.id);

      let gate = h.gate();
      let jobs = await h.submitGated(b, 4, gate.path);
      await h.waitSplit(b, jobs, 2, 2);
      gate.open();
      let done = await h.finishAll(b, jobs);
      allSucceeded(done);
      expect(maxOverlap(done)).toBe(2);

      const user = await s.graphql(`mutation($id: ID!) { setUserJobLimit(userId: $id, max: 1) { ${LIMITS} } }`, { id: b.id });
      expect(user.errors).toBeUndefined();
      expect(user.data.setUserJobLimit.overrides).toContainEqual({ userId: b.id, email: b.email, maxConcurrentJobs: 1 });
      gate = h.gate();
      jobs = await h.submitGated(b, 3, gate.path);
      await h.waitSplit(b, jobs, 1, 2);
      gate.open();
      done = await h.finishAll(b, jobs);
      allSucceeded(done);
      expect(maxOverlap(done)).toBe(1);
      expectStartedInOrder(done);

      const cleared = await s.graphql(`mutation($id: ID!) { setUserJobLimit(userId: $id, max: null) { ${LIMITS} } }`, { id: b.id });
      expect(cleared.errors).toBeUndefined();
      expect(cleared.data.setUserJobLimit.overrides.map((o: any) => o.userId)).not.toContain(b.id);
      gate = h.gate();
      jobs = await h.submitGated(b, 3, gate.path);
      await h.waitSplit(b, jobs, 2, 1); // back to the default, 2
      gate.open();
      allSucceeded(await h.finishAll(b, jobs));

      // Only admins steer limits.
      const denied = await s.graphql('mutation { setDefaultJobLimit(max: 100) { defaultMaxConcurrentJobs } }', {}, a.token);
      expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    } finally {
      await s.graphql('mutation { setDefaultJobLimit(max: 4) { defaultMaxConcurrentJobs } }');
    }
  });
});

// A worker with only 2 slots, filled by one user: what happens to jobs that
// queue behind a full worker.
describe.each(PROVIDERS)('a saturated worker on %s', (provider) => {
  let s: TestServer;
  // A: the bootstrap admin (default limit 4 > the worker's 2 slots); B: an operator.
  let a: Who;
  let b: Awaited<ReturnType<TestServer['user']>>;
  const h = helpers(() => s);

  beforeAll(async () => {
    s = await startServer(provider, { WORKER_CONCURRENCY: '2' });
    a = { token: s.adminToken };
    b = await s.user('operator');
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('never runs more than WORKER_CONCURRENCY jobs; a job queued behind a full worker starts when a slot frees', async () => {
    const gate = h.gate();
    const jobs = await h.submitGated(a, 3, gate.path);
    // Real jobs keep a worker full for a while: hold it full past a scheduler tick (1 s).
    await h.waitSplit(a, jobs, 2, 1, 1500);
    gate.open();
    const done = await h.finishAll(a, jobs, 15_000);
    allSucceeded(done);
    expect(maxOverlap(done)).toBe(2);
  });

  it("one user's backlog does not starve another user's job", async () => {
    // A fills both worker slots and has ~200 one-second jobs queued behind them.
    const backlog: JobRead[] = [];
    for (let i = 0; i < 200; i += 10) {
      backlog.push(...(await Promise.all(Array.from({ length: 10 }, (_, k) => submit(s, a.token, { name: `a${i + k}`, command: ['sleep', '1'] })))));
    }
    expect(backlog).toHaveLength(200);
    await waitFor(async () => (await s.request('GET', '/jobs/stats', { token: a.token })).body.running === 2, 10_000);

    const bJob = await submit(s, b.token, { name: 'b', command: ['true'] });
    const bDone = await waitTerminal(s, b.token, bJob.id, 20_000);
    const aStats = (await s.request('GET', '/jobs/stats', { token: a.token })).body;
    expect(bDone.status).toBe('success');
    // Served first-come-first-served, B would wait ~100 s for A's backlog (2 slots, 1 s each).
    expect(aStats.pending, JSON.stringify(aStats)).toBeGreaterThan(100);

    // Clean up A's backlog: cancel whatever is not terminal yet.
    await waitFor(async () => {
      const live = [
        ...(await s.request('GET', '/jobs?status=pending&limit=200', { token: a.token })).body,
        ...(await s.request('GET', '/jobs?status=running&limit=200', { token: a.token })).body,
      ] as JobRead[];
      if (live.length === 0) return true;
      for (let i = 0; i < live.length; i += 10) {
        const codes = await Promise.all(live.slice(i, i + 10).map(async (j) => (await s.request('POST', `/jobs/${j.id}/cancel`, { token: a.token })).status));
        for (const c of codes) expect([200, 409]).toContain(c); // 409: it finished meanwhile
      }
      return false;
    }, 60_000);
    const final = (await s.request('GET', '/jobs/stats', { token: a.token })).body;
    expect(final.pending + final.running).toBe(0);
    expect(final.canceled).toBeGreaterThan(100);
  });
});
