// The REST surface of the seed API reference, as data. Each entry names the
// GraphQL operation it runs; see route.ts for the fields.
import * as Ops from './operations/generated.js';
import { route, type Route } from './route.js';
import * as S from './schemas.js';
import { jobLogsRead, jobRead, limitsRead, roleEnum, statusEnum, userRead } from './shapes.js';

type Role = 'admin' | 'operator' | 'viewer';

export const routes: Route[] = [
  route({
    method: 'POST', path: '/auth/token', tag: 'auth', auth: false,
    summary: 'Exchange email and password for a bearer token (OAuth2 password flow)',
    document: Ops.LoginDocument,
    body: { schema: S.TokenForm, form: true },
    variables: ({ body }) => ({ email: body.username, password: body.password }),
    status: 200,
    response: { schema: S.TokenRead, map: (d) => ({ access_token: d.login.accessToken, token_type: 'bearer', expires_in: d.login.expiresIn }) },
  }),
  route({
    method: 'GET', path: '/health', tag: 'health', auth: false,
    summary: 'Readiness: database and Redis connectivity',
    document: Ops.HealthDocument,
    variables: () => ({}),
    status: 200,
    response: { schema: S.HealthRead, map: (d) => d.health },
  }),

  route({
    method: 'POST', path: '/jobs', tag: 'jobs', auth: true,
    summary: 'Submit a job (runs as soon as the caller\'s limit and a worker slot allow)',
    document: Ops.SubmitJobDocument,
    body: { schema: S.JobCreate },
    variables: ({ body }) => ({
      input: {
        name: body.name, command: body.command, workingDir: body.working_dir, env: body.env,
        payload: body.payload, timeoutSeconds: body.timeout_seconds,
      },
    }),
    status: 202,
    response: { schema: S.JobRead, map: (d) => jobRead(d.submitJob) },
  }),
  route({
    method: 'GET', path: '/jobs', tag: 'jobs', auth: true,
    summary: 'List your jobs (admins: all), oldest first',
    description: 'Pages of at most `limit` (default and maximum 1000) jobs; the `X-Next-Cursor` response header, when present, is the `after` value of the next page.',
    document: Ops.JobsDocument,
    query: S.JobListQuery,
    variables: ({ query }) => ({
      status: query.status ? statusEnum(query.status) : undefined,
      batchId: query.batch_id, first: query.limit ?? 1000, after: query.after,
    }),
    status: 200,
    response: { schema: S.JobRead.array(), map: (d) => d.jobs.edges.map((e) => jobRead(e.node)) },
    headers: (d): Record<string, string> => (d.jobs.pageInfo.hasNextPage && d.jobs.pageInfo.endCursor ? { 'X-Next-Cursor': d.jobs.pageInfo.endCursor } : {}),
  }),
  route({
    method: 'GET', path: '/jobs/stats', tag: 'jobs', auth: true,
    summary: 'Counts of your jobs (admins: all) per status',
    document: Ops.JobStatsDocument,
    variables: () => ({}),
    status: 200,
    response: { schema: S.JobStatsRead, map: (d) => d.jobStats },
  }),
  route({
    method: 'GET', path: '/jobs/{id}', tag: 'jobs', auth: true,
    summary: 'Get a job',
    document: Ops.JobDocument,
    variables: ({ path }) => ({ id: path.id! }),
    status: 200,
    response: { schema: S.JobRead, map: (d) => jobRead(d.job) },
  }),
  route({
    method: 'GET', path: '/jobs/{id}/logs', tag: 'jobs', auth: true,
    summary: 'Stored stdout and stderr of a finished job (409 while pending or running)',
    document: Ops.JobLogsDocument,
    variables: ({ path }) => ({ id: path.id! }),
    status: 200,
    response: { schema: S.JobLogsRead, map: (d) => jobLogsRead(d.job.logs) },
  }),
  route({
    method: 'POST', path: '/jobs/{id}/cancel', tag: 'jobs', auth: true,
    summary: 'Cancel a pending or running job (its whole process group is stopped)',
    document: Ops.CancelJobDocument,
    variables: ({ path }) => ({ id: path.id! }),
    status: 200,
    response: { schema: S.JobRead, map: (d) => jobRead(d.cancelJob) },
  }),
  route({
    method: 'POST', path: '/jobs/{id}/force-complete', tag: 'jobs', auth: true, admin: true,
    summary: 'Force a job into a terminal status, optionally overriding its output',
    document: Ops.ForceCompleteJobDocument,
    body: { schema: S.ForceComplete },
    variables: ({ path, body }) => ({
      id: path.id!,
      input: { status: statusEnum(body.status), stdout: body.stdout, stderr: body.stderr, exitCode: body.exit_code },
    }),
    status: 200,
    response: { schema: S.JobRead, map: (d) => jobRead(d.forceCompleteJob) },
  }),
  route({
    method: 'DELETE', path: '/jobs/{id}/purge', tag: 'jobs', auth: true,
    summary: 'Remove a finished job and all its output',
    document: Ops.PurgeJobDocument,
    variables: ({ path }) => ({ id: path.id! }),
    status: 204,
  }),

  route({
    method: 'POST', path: '/users', tag: 'users', auth: true, admin: true,
    summary: 'Create a user',
    document: Ops.CreateUserDocument,
    body: { schema: S.UserCreate },
    variables: ({ body }) => ({
      input: {
        email: body.email, password: body.password, role: roleEnum(body.role as Role),
        isActive: body.is_active, maxConcurrentJobs: body.max_concurrent_jobs,
      },
    }),
    status: 201,
    response: { schema: S.UserRead, map: (d) => userRead(d.createUser) },
  }),
  route({
    method: 'GET', path: '/users', tag: 'users', auth: true, admin: true,
    summary: 'List users',
    document: Ops.UsersDocument,
    variables: () => ({}),
    status: 200,
    response: { schema: S.UserRead.array(), map: (d) => d.users.map(userRead) },
  }),
  route({
    method: 'GET', path: '/users/{id}', tag: 'users', auth: true, admin: true,
    summary: 'Get a user',
    document: Ops.UserDocument,
    variables: ({ path }) => ({ id: path.id! }),
    status: 200,
    response: { schema: S.UserRead, map: (d) => userRead(d.user) },
  }),
  route({
    method: 'PATCH', path: '/users/{id}', tag: 'users', auth: true, admin: true,
    summary: 'Update role, password, is_active or the per-user job limit',
    document: Ops.UpdateUserDocument,
    body: { schema: S.UserUpdate },
    variables: ({ path, body }) => ({
      id: path.id!,
      input: {
        ...(body.role !== undefined && { role: roleEnum(body.role as Role) }),
        ...(body.password !== undefined && { password: body.password }),
        ...(body.is_active !== undefined && { isActive: body.is_active }),
        ...(body.max_concurrent_jobs !== undefined && { maxConcurrentJobs: body.max_concurrent_jobs }),
      },
    }),
    status: 200,
    response: { schema: S.UserRead, map: (d) => userRead(d.updateUser) },
  }),

  route({
    method: 'GET', path: '/admin/limits', tag: 'limits', auth: true, admin: true,
    summary: 'The global default and every per-user override',
    document: Ops.LimitsDocument,
    variables: () => ({}),
    status: 200,
    response: { schema: S.LimitsRead, map: (d) => limitsRead(d.limits) },
  }),
  route({
    method: 'POST', path: '/admin/limits/global', tag: 'limits', auth: true, admin: true,
    summary: 'Set the default max concurrent jobs per user',
    document: Ops.SetDefaultJobLimitDocument,
    body: { schema: S.LimitSet },
    variables: ({ body }) => ({ max: body.max_concurrent_jobs }),
    status: 200,
    response: { schema: S.LimitsRead, map: (d) => limitsRead(d.setDefaultJobLimit) },
  }),
  route({
    method: 'POST', path: '/admin/limits/users/{id}', tag: 'limits', auth: true, admin: true,
    summary: 'Set or (with null) clear a user\'s max concurrent jobs',
    document: Ops.SetUserJobLimitDocument,
    body: { schema: S.UserLimitSet },
    variables: ({ path, body }) => ({ userId: path.id!, max: body.max_concurrent_jobs }),
    status: 200,
    response: { schema: S.LimitsRead, map: (d) => limitsRead(d.setUserJobLimit) },
  }),
];
