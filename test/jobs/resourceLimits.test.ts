// Per-job resource limits in the API: the values in force in JobRead.limits
// (defaults, or what the job asked for), the configured ceilings (a 422
// naming the field and the ceiling on REST, BAD_USER_INPUT on GraphQL), the
// absolute ranges, batches, and how a stored row is read back
// (limitsInForce). Enforcement is the spawner's and is tested there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { limitsInForce } from '../../src/services/jobSpec.js';
import { PROVIDERS } from '../helpers/db.js';
import { getJob, RESOURCE_LIMIT_KEYS, submit, waitTerminal, type JobRead } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';

type User = Awaited<ReturnType<TestServer['user']>>;

const DEFAULTS = { memory_mb: 4096, pids: 1024, cpu_seconds: null, open_files: 4096, file_size_mb: null };
const LIMITS_FIELDS = 'limits { memoryMb pids cpuSeconds openFiles fileSizeMb }';

interface Issue { type: string; loc: (string | number)[]; msg: string; input?: unknown }

/** A 422 with Pydantic-shaped issues; returns the one at `loc`. */
function expect422(res: { status: number; body: any; text: string }, loc: (string | number)[]): Issue {
  expect(res.status, res.text.slice(0, 300)).toBe(422);
  expect(Object.keys(res.body)).toEqual(['detail']);
  const detail = res.body.detail as Issue[];
  const issue = detail.find((i) => JSON.stringify(i.loc) === JSON.stringify(loc));
  expect(issue, `no issue at ${JSON.stringify(loc)}: ${res.text.slice(0, 300)}`).toBeDefined();
  expect(typeof issue!.msg).toBe('string');
  return issue!;
}

/** A GraphQL BAD_USER_INPUT error carrying Pydantic-shaped issues; returns the one at `loc`. */
function expectBadInput(res: { data?: any; errors?: any[] }, loc: (string | number)[]): { message: string; issue: Issue } {
  expect(res.errors?.length, JSON.stringify(res)).toBeGreaterThan(0);
  const error = res.errors![0];
  expect(error.extensions.code).toBe('BAD_USER_INPUT');
  const issue = (error.extensions.issues as Issue[]).find((i) => JSON.stringify(i.loc) === JSON.stringify(loc));
  expect(issue, `no issue at ${JSON.stringify(loc)}: ${JSON.stringify(error)}`).toBeDefined();
  return { message: error.message as string, issue: issue! };
}

describe('limitsInForce (the worker\'s reader of a stored row)', () => {
  const jobLimits = loadConfig({ JOB_MEMORY_MB_MAX: '2048', JOB_CPU_SECONDS: '30', JOB_CPU_SECONDS_MAX: '60' }).jobLimits;

  it('reads a row from before the column as the defaults', () => {
    expect(limitsInForce('{}', jobLimits)).toEqual({ memoryMb: 2048, pids: 1024, cpuSeconds: 30, openFiles: 4096, fileSizeMb: null });
  });

  it('takes stored values over the defaults, null as unlimited where no ceiling is set', () => {
    expect(limitsInForce(JSON.stringify({ memoryMb: 512, pids: 64, openFiles: null, fileSizeMb: 10 }), jobLimits))
      .toEqual({ memoryMb: 512, pids: 64, cpuSeconds: 30, openFiles: null, fileSizeMb: 10 });
  });

  it('never exceeds a ceiling configured after the job was stored', () => {
    expect(limitsInForce(JSON.stringify({ memoryMb: 8192, cpuSeconds: null }), jobLimits))
      .toEqual({ memoryMb: 2048, pids: 1024, cpuSeconds: 60, openFiles: 4096, fileSizeMb: null });
  });

  it('ignores what is not a limit value', () => {
    for (const stored of ['', 'not json', '[]', 'null', JSON.stringify({ memoryMb: 'lots', pids: 1.5, other: 3 })]) {
      expect(limitsInForce(stored, jobLimits), stored).toEqual({ memoryMb: 2048, pids: 1024, cpuSeconds: 30, openFiles: 4096, fileSizeMb: null });
    }
  });
});

describe.each(PROVIDERS)('per-job resource limits on %s', (provider) => {
  describe('with the built-in defaults and no ceilings', () => {
    let s: TestServer;
    let op: User;
    beforeAll(async () => {
      s = await startServer(provider);
      op = await s.user('operator');
    });
    afterAll(async () => {
      await s?.stop();
    });

    const post = (body: Record<string, unknown>) => s.request('POST', '/jobs', { token: op.token, body: { name: 'limits', command: ['true'], ...body } });

    it('a job that asks for nothing gets the defaults, in JobRead.limits with all five keys', async () => {
      const job = await submit(s, op.token, { command: ['true'] });
      expect(Object.keys(job.limits).sort()).toEqual([...RESOURCE_LIMIT_KEYS].sort());
      expect(job.limits).toEqual(DEFAULTS);
      // Unchanged once it has run.
      expect((await waitTerminal(s, op.token, job.id)).limits).toEqual(DEFAULTS);
      // A full page of 1000 jobs, every field, still fits the query complexity limit.
      const listed = await s.request('GET', '/jobs?limit=1000', { token: op.token });
      expect(listed.status, listed.text).toBe(200);
      expect(listed.body.find((j: JobRead) => j.id === job.id).limits).toEqual(DEFAULTS);
    });

    it('stores the values in force at submission (camelCase JSON of all five)', async () => {
      const job = await submit(s, op.token, { command: ['true'], limits: { memory_mb: 300 } });
      const row = await s.app.db.prisma.job.findUniqueOrThrow({ where: { id: job.id } });
      expect(JSON.parse(row.limits)).toEqual({ memoryMb: 300, pids: 1024, cpuSeconds: null, openFiles: 4096, fileSizeMb: null });
    });

    it('returns the values a job asked for, the defaults for the rest; null or {} asks for nothing', async () => {
      const asked = { memory_mb: 512, pids: 64, cpu_seconds: 120, open_files: 256, file_size_mb: 100 };
      const all = await submit(s, op.token, { command: ['true'], limits: asked });
      expect(all.limits).toEqual(asked);
      expect((await getJob(s, op.token, all.id)).limits).toEqual(asked);

      const some = await submit(s, op.token, { command: ['true'], limits: { cpu_seconds: 5, pids: null } });
      expect(some.limits).toEqual({ ...DEFAULTS, cpu_seconds: 5 });
      for (const limits of [null, {}]) expect((await submit(s, op.token, { command: ['true'], limits })).limits).toEqual(DEFAULTS);
      expect((await waitTerminal(s, op.token, all.id)).limits).toEqual(asked);
    });

    it('accepts both ends of each absolute range', async () => {
      const low = { memory_mb: 16, pids: 8, cpu_seconds: 1, open_files: 16, file_size_mb: 1 };
      const high = { memory_mb: 1024 * 1024, pids: 4_194_304, cpu_seconds: 365 * 86400, open_files: 1024 * 1024, file_size_mb: 16 * 1024 * 1024 };
      for (const limits of [low, high]) {
        const res = await post({ limits });
        expect(res.status, res.text).toBe(202);
        expect(res.body.limits).toEqual(limits);
      }
    });

    it('422 for values outside the absolute range, of the wrong type, or unknown keys; nothing is created', async () => {
      const before = (await s.request('GET', '/jobs/stats', { token: op.token })).body.total;
      const range = expect422(await post({ limits: { memory_mb: 15 } }), ['body', 'limits', 'memory_mb']);
      expect(range.type).toBe('greater_than_equal');
      expect(range.input).toBe(15);
      expect422(await post({ limits: { memory_mb: 1024 * 1024 + 1 } }), ['body', 'limits', 'memory_mb']);
      expect422(await post({ limits: { pids: 0 } }), ['body', 'limits', 'pids']);
      expect422(await post({ limits: { cpu_seconds: -1 } }), ['body', 'limits', 'cpu_seconds']);
      expect422(await post({ limits: { open_files: 1.5 } }), ['body', 'limits', 'open_files']);
      expect422(await post({ limits: { file_size_mb: 16 * 1024 * 1024 + 1 } }), ['body', 'limits', 'file_size_mb']);
      const type = expect422(await post({ limits: { memory_mb: '4096' } }), ['body', 'limits', 'memory_mb']);
      expect(type.type).toBe('int_type');
      expect(expect422(await post({ limits: { memory: 1024 } }), ['body', 'limits', 'memory']).type).toBe('extra_forbidden');
      // The GraphQL spelling is not the REST one.
      expect(expect422(await post({ limits: { memoryMb: 1024 } }), ['body', 'limits', 'memoryMb']).type).toBe('extra_forbidden');
      expect422(await post({ limits: 4096 }), ['body', 'limits']);
      expect422(await post({ limits: [512] }), ['body', 'limits']);
      expect((await s.request('GET', '/jobs/stats', { token: op.token })).body.total).toBe(before);
    });

    it('batch jobs take limits, each its own', async () => {
      const res = await s.request('POST', '/job-batches', {
        token: op.token,
        body: { name: 'with-limits', jobs: [{ name: 'a', command: ['true'], limits: { memory_mb: 128, pids: 16 } }, { name: 'b', command: ['true'] }] },
      });
      expect(res.status, res.text).toBe(201);
      expect(res.body.jobs.map((j: JobRead) => j.limits)).toEqual([{ ...DEFAULTS, memory_mb: 128, pids: 16 }, DEFAULTS]);
      const again = await s.request('GET', `/job-batches/${res.body.id}`, { token: op.token });
      expect(again.body.jobs.map((j: JobRead) => j.limits)).toEqual([{ ...DEFAULTS, memory_mb: 128, pids: 16 }, DEFAULTS]);

      const bad = await s.request('POST', '/job-batches', {
        token: op.token,
        body: { name: 'bad-limits', jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['true'], limits: { pids: 7 } }] },
      });
      expect422(bad, ['body', 'jobs', 1, 'limits', 'pids']);
    });

    it('GraphQL: submitJob takes ResourceLimitsInput and Job.limits returns the values in force', async () => {
      const submitted = await s.graphql(
        `mutation($input: SubmitJobInput!) { submitJob(input: $input) { id ${LIMITS_FIELDS} } }`,
        { input: { name: 'gql-limits', command: ['true'], limits: { memoryMb: 256, cpuSeconds: 10 } } },
        op.token,
      );
      expect(submitted.errors).toBeUndefined();
      expect(submitted.data.submitJob.limits).toEqual({ memoryMb: 256, pids: 1024, cpuSeconds: 10, openFiles: 4096, fileSizeMb: null });
      const read = await s.graphql(`query($id: ID!) { job(id: $id) { ${LIMITS_FIELDS} } }`, { id: submitted.data.submitJob.id }, op.token);
      expect(read.data.job.limits).toEqual(submitted.data.submitJob.limits);

      const plain = await s.graphql(`mutation { submitJob(input: { name: "gql-plain", command: ["true"] }) { ${LIMITS_FIELDS} } }`, {}, op.token);
      expect(plain.data.submitJob.limits).toEqual({ memoryMb: 4096, pids: 1024, cpuSeconds: null, openFiles: 4096, fileSizeMb: null });

      const low = await s.graphql(`mutation { submitJob(input: { name: "gql-low", command: ["true"], limits: { pids: 2 } }) { id } }`, {}, op.token);
      expect(low.data).toBeNull();
      expect(expectBadInput(low, ['limits', 'pids']).issue.type).toBe('greater_than_equal');
      const wrong = await s.graphql(
        `mutation($input: SubmitJobInput!) { submitJob(input: $input) { id } }`,
        { input: { name: 'gql-str', command: ['true'], limits: { memoryMb: '4096' } } },
        op.token,
      );
      expect(wrong.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('GraphQL: createBatch takes limits per job', async () => {
      const res = await s.graphql(
        `mutation($input: CreateBatchInput!) { createBatch(input: $input) { jobs { name ${LIMITS_FIELDS} } } }`,
        { input: { name: 'gql-batch', jobs: [{ name: 'a', command: ['true'], limits: { fileSizeMb: 5 } }, { name: 'b', command: ['true'] }] } },
        op.token,
      );
      expect(res.errors).toBeUndefined();
      expect(res.data.createBatch.jobs.map((j: any) => j.limits.fileSizeMb)).toEqual([5, null]);
      expect(res.data.createBatch.jobs[0].limits.memoryMb).toBe(4096);
    });
  });

  describe('with configured defaults and ceilings', () => {
    let s: TestServer;
    let op: User;
    const CONFIGURED = { memory_mb: 2048, pids: 64, cpu_seconds: 30, open_files: 4096, file_size_mb: null };
    beforeAll(async () => {
      s = await startServer(provider, { JOB_MEMORY_MB_MAX: '2048', JOB_PIDS: '64', JOB_CPU_SECONDS: '30', JOB_CPU_SECONDS_MAX: '600' });
      op = await s.user('operator');
    });
    afterAll(async () => {
      await s?.stop();
    });

    const post = (body: Record<string, unknown>) => s.request('POST', '/jobs', { token: op.token, body: { name: 'limits', command: ['true'], ...body } });
    const total = async () => (await s.request('GET', '/jobs/stats', { token: s.adminToken })).body.total as number;

    it('a job that asks for nothing gets the configured defaults (the memory default lowered to its ceiling)', async () => {
      expect((await submit(s, op.token, { command: ['true'] })).limits).toEqual(CONFIGURED);
    });

    it('accepts a value up to the ceiling', async () => {
      const res = await post({ limits: { memory_mb: 2048, cpu_seconds: 600 } });
      expect(res.status, res.text).toBe(202);
      expect(res.body.limits).toEqual({ ...CONFIGURED, memory_mb: 2048, cpu_seconds: 600 });
      expect((await post({ limits: { memory_mb: 1024 } })).body.limits.memory_mb).toBe(1024);
    });

    it('REST: above a ceiling is a 422 naming the field and the ceiling; nothing is created', async () => {
      const before = await total();
      const res = await post({ limits: { memory_mb: 4096 } });
      const issue = expect422(res, ['body', 'limits', 'memory_mb']);
      expect(issue).toEqual({ type: 'less_than_equal', loc: ['body', 'limits', 'memory_mb'], msg: 'memory_mb must be at most 2048 (JOB_MEMORY_MB_MAX)', input: 4096 });
      const both = await post({ limits: { memory_mb: 4096, cpu_seconds: 601 } });
      expect(both.body.detail).toHaveLength(2);
      expect(expect422(both, ['body', 'limits', 'cpu_seconds']).msg).toBe('cpu_seconds must be at most 600 (JOB_CPU_SECONDS_MAX)');
      expect(await total()).toBe(before);
    });

    it('REST: a batch with one job above a ceiling is a 422 naming that job; nothing is created', async () => {
      const before = await total();
      const res = await s.request('POST', '/job-batches', {
        token: op.token,
        body: { name: 'over', jobs: [{ name: 'ok', command: ['true'], limits: { memory_mb: 2048 } }, { name: 'over', command: ['true'], limits: { memory_mb: 2049 } }] },
      });
      const issue = expect422(res, ['body', 'jobs', 1, 'limits', 'memory_mb']);
      expect(issue.msg).toBe('memory_mb must be at most 2048 (JOB_MEMORY_MB_MAX)');
      expect(res.body.detail).toHaveLength(1);
      expect(await total()).toBe(before);
    });

    it('GraphQL: above a ceiling is BAD_USER_INPUT naming the field and the ceiling', async () => {
      const before = await total();
      const res = await s.graphql(
        `mutation($input: SubmitJobInput!) { submitJob(input: $input) { id } }`,
        { input: { name: 'over', command: ['true'], limits: { memoryMb: 4096 } } },
        op.token,
      );
      const { message, issue } = expectBadInput(res, ['limits', 'memoryMb']);
      expect(issue).toEqual({ type: 'less_than_equal', loc: ['limits', 'memoryMb'], msg: 'memoryMb must be at most 2048 (JOB_MEMORY_MB_MAX)', input: 4096 });
      expect(message).toContain('2048');
      expect(message).toContain('memoryMb');

      const batch = await s.graphql(
        `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`,
        { input: { name: 'over', jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['true'], limits: { memoryMb: 4096 } }] } },
        op.token,
      );
      expectBadInput(batch, ['jobs', 1, 'limits', 'memoryMb']);
      expect(await total()).toBe(before);

      const ok = await s.graphql(`mutation { submitJob(input: { name: "at", command: ["true"], limits: { memoryMb: 2048 } }) { ${LIMITS_FIELDS} } }`, {}, op.token);
      expect(ok.data.submitJob.limits).toEqual({ memoryMb: 2048, pids: 64, cpuSeconds: 30, openFiles: 4096, fileSizeMb: null });
    });

    it('a row from before the column reads as the defaults; a stored value above today\'s ceiling reads as the ceiling', async () => {
      const old = await submit(s, op.token, { command: ['true'], limits: { pids: 100 } });
      await waitTerminal(s, op.token, old.id);
      await s.app.db.prisma.job.update({ where: { id: old.id }, data: { limits: '{}' } });
      expect((await getJob(s, op.token, old.id)).limits).toEqual(CONFIGURED);
      await s.app.db.prisma.job.update({ where: { id: old.id }, data: { limits: JSON.stringify({ memoryMb: 8192, pids: 100 }) } });
      expect((await getJob(s, op.token, old.id)).limits).toEqual({ ...CONFIGURED, memory_mb: 2048, pids: 100 });
    });
  });
});
