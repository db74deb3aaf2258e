// Which attempt on which worker ran a job, over REST (JobRead) and GraphQL
// (Job): attempt, worker_id, worker_host, cancel_requested; and the two
// answers of cancel and force-complete: 200 with the job once the stop is
// done, 202 with the job still running and cancel_requested true when the
// stop is recorded but not confirmed.
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, PROVIDERS, type TestDatabase } from '../helpers/db.js';
import { getJob, jobGate, JOB_READ_KEYS, runJob, submit, waitRunning, waitTerminal, type JobRead } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, restClient, startServer, testServerEnv, tokenClient, type TestServer } from '../helpers/server.js';

const RUN_FIELDS = 'id status attempt workerId workerHost cancelRequested';

/** What GraphQL's Job says about the run, in JobRead's terms. */
interface RunInfo { status: string; attempt: number; worker_id: string | null; worker_host: string | null; cancel_requested: boolean }

const runInfo = (j: JobRead): RunInfo => ({ status: j.status, attempt: j.attempt, worker_id: j.worker_id, worker_host: j.worker_host, cancel_requested: j.cancel_requested });
const gqlRunInfo = (j: { status: string; attempt: number; workerId: string | null; workerHost: string | null; cancelRequested: boolean }): RunInfo => ({
  status: j.status.toLowerCase(), attempt: j.attempt, worker_id: j.workerId, worker_host: j.workerHost, cancel_requested: j.cancelRequested,
});

/** A worker id as engine/worker.ts makes them: `<hostname>:<pid>:<random>`. */
const WORKER_ID = /^[^:]+:\d+:[^:]+$/;

/** A shell loop that holds the job running until the gate file exists. */
const holdUntil = (gate: string) => ['sh', '-c', `while [ ! -e '${gate}' ]; do sleep 0.05; done`];

describe.each(PROVIDERS)('attempt and worker of a job on %s', (provider) => {
  let s: TestServer;
  let op: Awaited<ReturnType<TestServer['user']>>;

  beforeAll(async () => {
    s = await startServer(provider);
    op = await s.user('operator', { max_concurrent_jobs: 1 });
  });
  afterAll(async () => {
    await s?.stop();
  });

  const gqlJob = async (id: string, token = op.token): Promise<RunInfo> => {
    const res = await s.graphql(`query ($id: ID!) { job(id: $id) { ${RUN_FIELDS} } }`, { id }, token);
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    return gqlRunInfo(res.data.job);
  };

  it('a job that ran: attempt 1 on a worker of this host, no stop requested; REST, GraphQL, the list and the database agree', async () => {
    const { job } = await runJob(s, op.token, { name: 'ran', command: ['true'] });
    expect(Object.keys(job)).toEqual(expect.arrayContaining([...JOB_READ_KEYS]));
    expect(job).toMatchObject({ status: 'success', attempt: 1, worker_host: hostname(), cancel_requested: false });
    expect(job.worker_id).toMatch(WORKER_ID);
    expect(job.worker_id!.startsWith(`${hostname()}:`)).toBe(true);

    const row = await s.app.db.prisma.job.findUniqueOrThrow({ where: { id: job.id } });
    expect(job.worker_id).toBe(row.workerId);
    expect(job.attempt).toBe(row.attempt);
    // The worker is this process's (the in-process server runs the worker).
    expect(job.worker_id!.split(':')[1]).toBe(String(process.pid));

    expect(await gqlJob(job.id)).toEqual(runInfo(job));
    const listed = await s.request('GET', '/jobs?limit=1000', { token: op.token });
    expect(listed.status, listed.text).toBe(200);
    expect(runInfo(listed.body.find((j: JobRead) => j.id === job.id))).toEqual(runInfo(job));
  });

  it("a batch's jobs carry the same fields", async () => {
    const created = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'b', jobs: [{ name: 'one', command: ['true'] }] } });
    expect(created.status, created.text).toBe(201);
    const [fresh] = created.body.jobs as JobRead[];
    expect(Object.keys(fresh!)).toEqual(expect.arrayContaining([...JOB_READ_KEYS]));
    await waitTerminal(s, op.token, fresh!.id);
    const batch = await s.request('GET', `/job-batches/${created.body.id}`, { token: op.token });
    expect(batch.status, batch.text).toBe(200);
    const [ran] = batch.body.jobs as JobRead[];
    expect(ran).toMatchObject({ status: 'success', attempt: 1, worker_host: hostname(), cancel_requested: false });
    expect(ran!.worker_id).toMatch(WORKER_ID);
  });

  it('a pending job: attempt 0, no worker; canceled while pending, the answer is 200 and it never gets one', async () => {
    const gate = jobGate('runinfo');
    // The operator's limit is 1: the second job waits while the first holds the slot.
    const holder = await submit(s, op.token, { name: 'holder', command: holdUntil(gate) });
    await waitRunning(s, op.token, holder.id);
    const waiting = await submit(s, op.token, { name: 'waiting', command: ['true'] });
    const pending = await getJob(s, op.token, waiting.id);
    expect(runInfo(pending)).toEqual({ status: 'pending', attempt: 0, worker_id: null, worker_host: null, cancel_requested: false });
    expect(await gqlJob(waiting.id)).toEqual(runInfo(pending));

    const third = await submit(s, op.token, { name: 'third', command: ['true'] });
    const canceled = await s.request('POST', `/jobs/${third.id}/cancel`, { token: op.token });
    expect(canceled.status, canceled.text).toBe(200);
    expect(runInfo(canceled.body)).toEqual({ status: 'canceled', attempt: 0, worker_id: null, worker_host: null, cancel_requested: false });

    writeFileSync(gate, '');
    expect(await waitTerminal(s, op.token, holder.id)).toMatchObject({ status: 'success', attempt: 1 });
    const ran = await waitTerminal(s, op.token, waiting.id);
    expect(ran).toMatchObject({ status: 'success', attempt: 1, worker_host: hostname(), cancel_requested: false });
  });

  it('a running job canceled and confirmed dead: 200, canceled, no stop left requested', async () => {
    const gate = jobGate('runinfo');
    const job = await submit(s, op.token, { name: 'to-cancel', command: holdUntil(gate) });
    const running = await waitRunning(s, op.token, job.id);
    expect(running).toMatchObject({ attempt: 1, worker_host: hostname(), cancel_requested: false });
    expect(await gqlJob(job.id)).toEqual(runInfo(running));

    const res = await s.request('POST', `/jobs/${job.id}/cancel`, { token: op.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'canceled', attempt: 1, worker_id: running.worker_id, cancel_requested: false });
  });

  it('a running job force-completed: 200 with the status asked for', async () => {
    const gate = jobGate('runinfo');
    const job = await submit(s, op.token, { name: 'to-force', command: holdUntil(gate) });
    await waitRunning(s, op.token, job.id);
    const res = await s.request('POST', `/jobs/${job.id}/force-complete`, { token: s.adminToken, body: { status: 'failed' } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'failed', attempt: 1, cancel_requested: false });
  });
});

// An API process with no worker (serve --no-worker) on a database where a job
// runs on a worker that is alive (its lease current) but never answers: the
// service records the stop on the job and waits, bounded, for a confirmation
// that cannot come, so cancel and force-complete answer 202 with the job
// still running and cancel_requested true; GraphQL answers the job as it is.
describe.each(PROVIDERS)('a stop that is not confirmed, on %s', (provider) => {
  let db: TestDatabase;
  let app: App;
  let url: string;
  let request: ReturnType<typeof restClient>;
  let admin: string;
  const GHOST = 'ghost-host:4242:0123456789ab';

  beforeAll(async () => {
    db = await createTestDatabase(provider);
    app = await buildApp(loadConfig(testServerEnv(db, { KILL_GRACE_SECONDS: '0', HEARTBEAT_SECONDS: '1' })), { worker: false, log: createLogger('error') });
    url = await app.start();
    request = restClient(`${url}/api/v1`);
    admin = await tokenClient(`${url}/api/v1`)(ADMIN_EMAIL, ADMIN_PASSWORD);
  });
  afterAll(async () => {
    await app?.stop(0);
    await db?.drop();
  });

  it('cancel and force-complete answer 202 with the job still running, cancel_requested true; GraphQL shows the same job', async () => {
    const submitted = await request('POST', '/jobs', { token: admin, body: { name: 'unconfirmed', command: ['sleep', '300'] } });
    expect(submitted.status, submitted.text).toBe(202);
    const id = submitted.body.id as string;
    expect(submitted.body).toMatchObject({ status: 'pending', attempt: 0, worker_id: null, worker_host: null, cancel_requested: false });

    const prisma = app.db.prisma;
    const farOff = new Date(Date.now() + 3_600_000);
    await prisma.worker.create({ data: { id: GHOST, hostname: 'ghost-host', pid: 4242, heartbeatAt: new Date(), leaseExpiresAt: farOff } });
    await prisma.job.update({
      where: { id },
      data: { status: 'running', startedAt: new Date(), workerId: GHOST, attempt: 1 },
    });
    const before = await request('GET', `/jobs/${id}`, { token: admin });
    expect(runInfo(before.body)).toEqual({ status: 'running', attempt: 1, worker_id: GHOST, worker_host: 'ghost-host', cancel_requested: false });

    const gql = (query: string) =>
      fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` }, body: JSON.stringify({ query, variables: { id } }) })
        .then(async (r) => ({ status: r.status, body: (await r.json()) as { data?: any; errors?: unknown[] } }));
    // The three wait out the same bounded wait (HEARTBEAT_SECONDS + KILL_GRACE_SECONDS + 5 s) together.
    const [cancel, force, viaGraphql] = await Promise.all([
      request('POST', `/jobs/${id}/cancel`, { token: admin }),
      request('POST', `/jobs/${id}/force-complete`, { token: admin, body: { status: 'success' } }),
      gql(`mutation ($id: ID!) { cancelJob(id: $id) { ${RUN_FIELDS} } }`),
    ]);
    const expected = { status: 'running', attempt: 1, worker_id: GHOST, worker_host: 'ghost-host', cancel_requested: true };
    expect(cancel.status, cancel.text).toBe(202);
    expect(runInfo(cancel.body)).toEqual(expected);
    expect(Object.keys(cancel.body)).toEqual(expect.arrayContaining([...JOB_READ_KEYS]));
    expect(force.status, force.text).toBe(202);
    expect(runInfo(force.body)).toEqual(expected);
    expect(viaGraphql.status).toBe(200);
    expect(viaGraphql.body.errors).toBeUndefined();
    expect(gqlRunInfo(viaGraphql.body.data.cancelJob)).toEqual(expected);

    // The stop stays recorded: the job is its worker's to stop.
    expect(runInfo((await request('GET', `/jobs/${id}`, { token: admin })).body)).toEqual(expected);
    expect((await prisma.job.findUniqueOrThrow({ where: { id } })).stopRequest).not.toBeNull();
  }, 60_000);

  it("a batch's cancel and force-complete answer 202 while one of its jobs is running unconfirmed, with that job's cancel_requested", async () => {
    const made = await request('POST', '/job-batches', { token: admin, body: { name: 'unconfirmed-batch', jobs: [{ name: 'held', command: ['sleep', '300'] }, { name: 'waiting', command: ['true'] }] } });
    expect(made.status, made.text).toBe(201);
    const [held, waiting] = made.body.jobs as { id: string }[];
    const prisma = app.db.prisma;
    const ghost = `${GHOST.slice(0, -2)}cd`;
    await prisma.worker.create({ data: { id: ghost, hostname: 'ghost-host', pid: 4243, heartbeatAt: new Date(), leaseExpiresAt: new Date(Date.now() + 3_600_000) } });
    await prisma.job.update({ where: { id: held!.id }, data: { status: 'running', startedAt: new Date(), workerId: ghost, attempt: 1 } });

    const canceled = await request('POST', `/job-batches/${made.body.id}/cancel`, { token: admin });
    expect(canceled.status, canceled.text).toBe(202);
    const jobs = new Map((canceled.body.jobs as { id: string; status: string; cancel_requested: boolean }[]).map((j) => [j.id, j]));
    expect(jobs.get(held!.id)).toMatchObject({ status: 'running', cancel_requested: true });
    expect(jobs.get(waiting!.id)).toMatchObject({ status: 'canceled', cancel_requested: false });
    const forced = await request('POST', `/job-batches/${made.body.id}/force-complete`, { token: admin, body: { status: 'failed' } });
    expect(forced.status, forced.text).toBe(202);

    // Once the job has ended, the same request answers 200.
    await prisma.job.update({ where: { id: held!.id }, data: { status: 'canceled', finishedAt: new Date(), stopRequest: null } });
    expect((await request('POST', `/job-batches/${made.body.id}/cancel`, { token: admin })).status).toBe(200);
  }, 60_000);

  it('OpenAPI documents both answers of cancel and force-complete with the job', async () => {
    const doc = (await (await fetch(`${url}/api/v1/openapi.json`)).json()) as any;
    for (const path of ['/api/v1/jobs/{id}/cancel', '/api/v1/jobs/{id}/force-complete']) {
      const responses = doc.paths[path].post.responses;
      for (const status of ['200', '202']) {
        expect(responses[status]?.content?.['application/json']?.schema?.properties, `${path} ${status}`).toHaveProperty('cancel_requested');
      }
      expect(responses['202'].description).toContain('cancel_requested');
    }
    for (const path of ['/api/v1/job-batches/{id}/cancel', '/api/v1/job-batches/{id}/force-complete']) {
      const responses = doc.paths[path].post.responses;
      for (const status of ['200', '202']) expect(responses[status]?.content?.['application/json']?.schema?.properties, `${path} ${status}`).toHaveProperty('jobs');
      expect(responses['202'].description).toContain('cancel_requested');
    }
    const job = doc.paths['/api/v1/jobs/{id}'].get.responses['200'].content['application/json'].schema;
    expect(job.required).toEqual(expect.arrayContaining(['attempt', 'worker_id', 'worker_host', 'cancel_requested']));
    expect(job.properties.attempt.description).toContain('requeued');
    // Health keeps its 503.
    expect(Object.keys(doc.paths['/api/v1/health'].get.responses)).toEqual(expect.arrayContaining(['200', '503']));
  });
});
