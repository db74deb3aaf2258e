// The REST surface of the seed API reference, as data. Each entry names the
// GraphQL operation it runs; see route.ts for the fields.
import * as Ops from './operations/generated.js';
import { route, type Route } from './route.js';
import * as S from './schemas.js';
import { limitsRead, roleEnum, userRead } from './shapes.js';

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
