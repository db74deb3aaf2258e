// The authorization table (issue #12): every REST route and every GraphQL
// root field and subscription, asked by every kind of principal, with the
// expected answer written out literally below (never computed from the policy
// module). A route or field missing from the table, or a table entry the app
// does not have, fails the test.
//
// Principals (columns):
//   anonymous  no token at all
//   viewer     a viewer's password session
//   owner      the operator who owns the target object (job, batch, API token; for /users/{id}: that user)
//   other      another operator
//   admin      an admin's password session
//   token      an API token of the owner with the single scope jobs:read
//
// Answers: REST status codes; GraphQL `ok` or the first error's extensions.code;
// subscriptions (graphql-ws) `ok` when the first event arrives, the error code,
// or the socket's close code (anonymous: 4403).
//
// Not found or forbidden: an object of a kind the principal may read but
// not this one (another operator's job) is 404, exactly as if missing; an
// object it may read but not change is 403; a refusal that does not depend on
// the object at all (the role, or the token's scopes: the jobs:read token and
// any batch) is 403 for every id, known or not (checked below as well).
//
// Every request is valid, so the answer is about authorization only. Calls
// that change something get a fresh object per principal (a pending job of the
// owner, a finished one, a batch, an API token, a user to revoke or to log out
// everywhere), so one principal's success never changes another's answer.
// The owner may run one job at a time and holds that slot with a sleeping
// job: every other job of theirs stays pending for as long as the suite runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema.js';
import { routes } from '../../src/rest/routes.js';
import { PROVIDERS } from '../helpers/db.js';
import { runJob, submit, waitRunning } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { JOB_EVENTS, JOB_LOG, JOB_UPDATED, track, wsClient } from '../helpers/ws.js';
import { randomSuffix } from './support.js';

const WHO = ['anonymous', 'viewer', 'owner', 'other', 'admin', 'token'] as const;
type Who = (typeof WHO)[number];
type Row = Record<Who, string>;

const r = (anonymous: string, viewer: string, owner: string, other: string, admin: string, token: string): Row => ({ anonymous, viewer, owner, other, admin, token });

// prettier-ignore
const TABLE: Record<string, Row> = {
  //                                        anonymous          viewer       owner        other        admin   token
  // --- REST (statuses) ---
  'POST /auth/token':                    r('200',             '200',       '200',       '200',       '200',  '200'),
  'GET /health':                         r('200',             '200',       '200',       '200',       '200',  '200'),
  'POST /auth/logout':                   r('401',             '204',       '204',       '204',       '204',  '403'),
  'POST /auth/logout-all':               r('401',             '204',       '204',       '204',       '204',  '403'),
  'POST /auth/tokens':                   r('401',             '201',       '201',       '201',       '201',  '403'),
  'GET /auth/tokens':                    r('401',             '200',       '200',       '200',       '200',  '403'),
  'DELETE /auth/tokens/{id}':            r('401',             '404',       '204',       '404',       '204',  '403'),
  'POST /jobs':                          r('401',             '403',       '202',       '202',       '202',  '403'),
  'GET /jobs':                           r('401',             '200',       '200',       '200',       '200',  '200'),
  'GET /jobs/stats':                     r('401',             '200',       '200',       '200',       '200',  '200'),
  'GET /jobs/{id}':                      r('401',             '200',       '200',       '404',       '200',  '200'),
  'GET /jobs/{id}/logs':                 r('401',             '200',       '200',       '404',       '200',  '200'),
  'GET /jobs/{id}/logs/stream':          r('401',             '200',       '200',       '404',       '200',  '200'),
  'POST /jobs/{id}/cancel':              r('401',             '403',       '200',       '404',       '200',  '403'),
  'POST /jobs/{id}/force-complete':      r('401',             '403',       '403',       '404',       '200',  '403'),
  'DELETE /jobs/{id}/purge':             r('401',             '403',       '204',       '404',       '204',  '403'),
  'POST /job-batches':                   r('401',             '403',       '201',       '201',       '201',  '403'),
  'GET /job-batches':                    r('401',             '200',       '200',       '200',       '200',  '403'),
  'GET /job-batches/{id}':               r('401',             '200',       '200',       '404',       '200',  '403'),
  'POST /job-batches/{id}/cancel':       r('401',             '403',       '200',       '404',       '200',  '403'),
  'POST /job-batches/{id}/force-complete': r('401',           '403',       '403',       '404',       '200',  '403'),
  'DELETE /job-batches/{id}':            r('401',             '403',       '204',       '404',       '204',  '403'),
  'POST /users':                         r('401',             '403',       '403',       '403',       '201',  '403'),
  'GET /users':                          r('401',             '403',       '403',       '403',       '200',  '403'),
  'GET /users/me':                       r('401',             '200',       '200',       '200',       '200',  '200'),
  'PATCH /users/me':                     r('401',             '200',       '200',       '200',       '200',  '403'),
  'GET /users/{id}':                     r('401',             '403',       '403',       '403',       '200',  '403'),
  'PATCH /users/{id}':                   r('401',             '403',       '403',       '403',       '200',  '403'),
  'POST /users/{id}/revoke-sessions':    r('401',             '403',       '403',       '403',       '204',  '403'),
  'GET /admin/limits':                   r('401',             '403',       '403',       '403',       '200',  '403'),
  'POST /admin/limits/global':           r('401',             '403',       '403',       '403',       '200',  '403'),
  'POST /admin/limits/users/{id}':       r('401',             '403',       '403',       '403',       '200',  '403'),
  'GET /admin/isolation':                r('401',             '403',       '403',       '403',       '200',  '403'),
  'GET /admin/status':                   r('401',             '403',       '403',       '403',       '200',  '403'),
  'GET /admin/audit':                    r('401',             '403',       '403',       '403',       '200',  '403'),
  'GET /admin/storage':                  r('401',             '403',       '403',       '403',       '200',  '403'),
  'POST /admin/retention/run':           r('401',             '403',       '403',       '403',       '200',  '403'),

  // --- GraphQL queries ---
  'Query.health':                        r('ok',              'ok',        'ok',        'ok',        'ok',   'ok'),
  'Query.me':                            r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'ok'),
  'Query.job':                           r('UNAUTHENTICATED', 'ok',        'ok',        'NOT_FOUND', 'ok',   'ok'),
  'Query.jobs':                          r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'ok'),
  'Query.jobStats':                      r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'ok'),
  'Query.batch':                         r('UNAUTHENTICATED', 'ok',        'ok',        'NOT_FOUND', 'ok',   'FORBIDDEN'),
  'Query.batches':                       r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'FORBIDDEN'),
  'Query.user':                          r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Query.users':                         r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Query.limits':                        r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Query.isolation':                     r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Query.adminStatus':                   r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Query.apiTokens':                     r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'FORBIDDEN'),
  'Query.auditLog':                      r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Query.storage':                       r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),

  // --- GraphQL mutations ---
  'Mutation.login':                      r('ok',              'ok',        'ok',        'ok',        'ok',   'ok'),
  'Mutation.logout':                     r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'FORBIDDEN'),
  'Mutation.logoutAll':                  r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'FORBIDDEN'),
  'Mutation.revokeSessions':             r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Mutation.createApiToken':             r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'FORBIDDEN'),
  'Mutation.revokeApiToken':             r('UNAUTHENTICATED', 'NOT_FOUND', 'ok',        'NOT_FOUND', 'ok',   'FORBIDDEN'),
  'Mutation.updateMe':                   r('UNAUTHENTICATED', 'ok',        'ok',        'ok',        'ok',   'FORBIDDEN'),
  'Mutation.submitJob':                  r('UNAUTHENTICATED', 'FORBIDDEN', 'ok',        'ok',        'ok',   'FORBIDDEN'),
  'Mutation.cancelJob':                  r('UNAUTHENTICATED', 'FORBIDDEN', 'ok',        'NOT_FOUND', 'ok',   'FORBIDDEN'),
  'Mutation.forceCompleteJob':           r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'NOT_FOUND', 'ok',   'FORBIDDEN'),
  'Mutation.purgeJob':                   r('UNAUTHENTICATED', 'FORBIDDEN', 'ok',        'NOT_FOUND', 'ok',   'FORBIDDEN'),
  'Mutation.createBatch':                r('UNAUTHENTICATED', 'FORBIDDEN', 'ok',        'ok',        'ok',   'FORBIDDEN'),
  'Mutation.cancelBatch':                r('UNAUTHENTICATED', 'FORBIDDEN', 'ok',        'NOT_FOUND', 'ok',   'FORBIDDEN'),
  'Mutation.forceCompleteBatch':         r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'NOT_FOUND', 'ok',   'FORBIDDEN'),
  'Mutation.deleteBatch':                r('UNAUTHENTICATED', 'FORBIDDEN', 'ok',        'NOT_FOUND', 'ok',   'FORBIDDEN'),
  'Mutation.createUser':                 r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Mutation.updateUser':                 r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Mutation.setDefaultJobLimit':         r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Mutation.setUserJobLimit':            r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),
  'Mutation.runRetention':               r('UNAUTHENTICATED', 'FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN', 'ok',   'FORBIDDEN'),

  // --- GraphQL subscriptions over graphql-ws ---
  'Subscription.jobEvents':              r('4403',            'ok',        'ok',        'ok',        'ok',   'ok'),
  'Subscription.jobUpdated':             r('4403',            'ok',        'ok',        'NOT_FOUND', 'ok',   'ok'),
  'Subscription.jobLog':                 r('4403',            'ok',        'ok',        'NOT_FOUND', 'ok',   'ok'),
};

/** Every REST route and GraphQL root field the app has, as table keys. */
function appKeys(): string[] {
  const keys = routes.map((rt) => `${rt.method} ${rt.path}`);
  for (const type of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]) {
    if (!type) continue;
    for (const field of Object.keys(type.getFields())) keys.push(`${type.name}.${field}`);
  }
  return keys;
}

interface Account {
  id: string;
  email: string;
  password: string;
}

/** Who asks: the bearer token (null: none) and the account behind it. */
interface Principal {
  who: Who;
  token: string | null;
  /** The user behind the token (anonymous: the owner, whose credentials it uses to log in). */
  account: Account;
}

/** One cell's answer and what to show when it is not the expected one. */
interface Answer {
  answer: string;
  detail: string;
}

type Cell = (p: Principal) => Promise<Answer>;

const NEW_PASSWORD = 'Changed-Passw0rd-4u!';

describe.each(PROVIDERS)('authorization table on %s', (provider) => {
  let s: TestServer;
  let owner: Account & { token: string };
  let other: Account & { token: string };
  let viewer: Account & { token: string };
  let admin: Account & { token: string };
  let narrowToken: string;
  let defaultMax: number;
  /** The owner's finished job with output, and a batch of theirs that stays pending. */
  let finishedJobId: string;
  let ownerBatchId: string;
  /** A user whose sessions the non-admin principals try to revoke (they may not). */
  let untouchable: Account;

  // ---- requests ----

  async function rest(p: Principal | string | null, method: string, path: string, body?: unknown): Promise<Answer> {
    const token = typeof p === 'string' || p === null ? p : p.token;
    const res = await s.request(method, path, { token, body });
    return { answer: String(res.status), detail: `${method} ${path} -> ${res.status} ${res.text.slice(0, 300)}` };
  }

  async function gql(p: Principal | string | null, query: string, variables: Record<string, unknown> = {}): Promise<Answer> {
    const token = typeof p === 'string' || p === null ? p : p.token;
    const res = await s.graphql(query, variables, token);
    const detail = `${query.replace(/\s+/g, ' ')} -> ${JSON.stringify(res).slice(0, 300)}`;
    if (res.errors?.length) return { answer: String(res.errors[0].extensions?.code ?? res.errors[0].message), detail };
    return { answer: res.data ? 'ok' : 'no data', detail };
  }

  /** A setup call that must work; throws with the answer otherwise. */
  async function must(method: string, path: string, token: string, body?: unknown): Promise<any> {
    const res = await s.request(method, path, { token, body });
    if (res.status >= 300) throw new Error(`setup ${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  /**
   * Subscribes over graphql-ws and waits for the first thing that happens:
   * an event (ok), an error (its code) or the socket closing (its code).
   * `poke` is called until then, to cause events.
   */
  async function subscribe(p: Principal, query: string, variables: Record<string, unknown>, poke?: () => Promise<void>): Promise<Answer> {
    const ws = wsClient(s, p.token);
    let closed: { code: number; reason: string } | null = null;
    void ws.closed.then((c) => (closed = c));
    const t = track(ws.client, query, variables);
    const deadline = Date.now() + 10_000;
    let nextPoke = Date.now() + 200;
    const describeAll = () => `${query} -> values ${JSON.stringify(t.values).slice(0, 200)}, errors ${JSON.stringify(t.errors).slice(0, 300)}, closed ${JSON.stringify(closed)}`;
    try {
      for (;;) {
        if (t.values.length) return { answer: 'ok', detail: describeAll() };
        const c = closed as { code: number; reason: string } | null;
        if (c) return { answer: String(c.code), detail: describeAll() };
        if (t.errors.length) {
          const e = t.errors[0];
          const code = e?.extensions?.code ?? (typeof e?.code === 'number' ? String(e.code) : e?.message);
          return { answer: String(code), detail: describeAll() };
        }
        if (t.isDone()) return { answer: 'completed without an event', detail: describeAll() };
        if (Date.now() > deadline) return { answer: 'nothing within 10 s', detail: describeAll() };
        if (poke && Date.now() >= nextPoke) {
          nextPoke = Date.now() + 400;
          await poke();
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    } finally {
      t.stop();
      await ws.dispose();
    }
  }

  // ---- accounts and fresh fixtures ----

  /** A user created by the admin (no login). */
  async function createAccount(role: 'admin' | 'operator' | 'viewer', extra: Record<string, unknown> = {}): Promise<Account> {
    const email = `authz-${role}-${randomSuffix()}@example.com`;
    const password = `Pw-${randomSuffix()}-${randomSuffix()}`;
    const body = await must('POST', '/users', s.adminToken, { email, password, role, ...extra });
    return { id: body.id, email, password };
  }

  /** An API token of `token`'s user with the given scopes; the created body. */
  async function apiToken(sessionToken: string, scopes: string[] = ['jobs:read']): Promise<{ id: string; token: string }> {
    return must('POST', '/auth/tokens', sessionToken, { name: `authz-${randomSuffix()}`, scopes });
  }

  /** A new password session of the same principal (the token principal: a new jobs:read token of the owner). */
  async function freshSession(p: Principal): Promise<Principal> {
    if (p.who === 'anonymous') return p;
    if (p.who === 'token') return { ...p, token: (await apiToken(owner.token)).token };
    return { ...p, token: await s.token(p.account.email, p.account.password) };
  }

  /** A brand-new user of the principal's kind (the token principal: a new operator's jobs:read token). */
  async function freshUser(p: Principal): Promise<Principal> {
    if (p.who === 'anonymous') return p;
    const role = p.who === 'viewer' ? 'viewer' : p.who === 'admin' ? 'admin' : 'operator';
    const account = await createAccount(role);
    const session = await s.token(account.email, account.password);
    return { who: p.who, account, token: p.who === 'token' ? (await apiToken(session)).token : session };
  }

  /** A job of the owner that stays pending (the owner's one slot is taken). */
  const pendingJob = async (): Promise<string> => (await submit(s, owner.token, { name: 'authz-pending', command: ['true'] })).id;

  /** A finished (canceled) job of the owner. */
  async function finishedJob(): Promise<string> {
    const id = await pendingJob();
    await must('POST', `/jobs/${id}/cancel`, s.adminToken);
    return id;
  }

  /** A batch of the owner whose job stays pending. */
  const pendingBatch = async (): Promise<string> =>
    (await must('POST', '/job-batches', owner.token, { name: `authz-${randomSuffix()}`, jobs: [{ name: 'b', command: ['true'] }] })).id;

  /** A finished (canceled) batch of the owner. */
  async function finishedBatch(): Promise<string> {
    const id = await pendingBatch();
    await must('POST', `/job-batches/${id}/cancel`, s.adminToken);
    return id;
  }

  /** A user whose sessions may be revoked: fresh for the admin (who succeeds), shared otherwise. */
  const revocable = async (p: Principal): Promise<string> => (p.who === 'admin' ? (await createAccount('operator')).id : untouchable.id);

  /** Causes job events every principal can see: a job of the owner (pending, then canceled) and one of the other operator. */
  async function pokeJobs(): Promise<void> {
    const [mine] = await Promise.all([
      submit(s, owner.token, { name: 'authz-poke', command: ['true'] }),
      submit(s, other.token, { name: 'authz-poke', command: ['true'] }),
    ]);
    await s.request('POST', `/jobs/${mine.id}/cancel`, { token: s.adminToken });
  }

  const form = (a: Account) => new URLSearchParams({ username: a.email, password: a.password }).toString();

  // ---- what each key asks ----

  const CELLS: Record<string, Cell> = {
    // REST
    'POST /auth/token': async (p) => {
      const res = await s.request('POST', '/auth/token', { token: p.token, raw: form(p.account), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      return { answer: String(res.status), detail: `POST /auth/token -> ${res.status} ${res.text.slice(0, 200)}` };
    },
    'GET /health': (p) => rest(p, 'GET', '/health'),
    'POST /auth/logout': async (p) => rest(await freshSession(p), 'POST', '/auth/logout'),
    'POST /auth/logout-all': async (p) => rest(await freshUser(p), 'POST', '/auth/logout-all'),
    'POST /auth/tokens': (p) => rest(p, 'POST', '/auth/tokens', { name: `authz-${randomSuffix()}`, scopes: ['jobs:read'], expires_in_days: 1 }),
    'GET /auth/tokens': (p) => rest(p, 'GET', '/auth/tokens'),
    'DELETE /auth/tokens/{id}': async (p) => rest(p, 'DELETE', `/auth/tokens/${(await apiToken(owner.token)).id}`),
    'POST /jobs': (p) => rest(p, 'POST', '/jobs', { name: 'authz-submit', command: ['true'] }),
    'GET /jobs': (p) => rest(p, 'GET', '/jobs?limit=5'),
    'GET /jobs/stats': (p) => rest(p, 'GET', '/jobs/stats'),
    'GET /jobs/{id}': (p) => rest(p, 'GET', `/jobs/${finishedJobId}`),
    'GET /jobs/{id}/logs': (p) => rest(p, 'GET', `/jobs/${finishedJobId}/logs`),
    'GET /jobs/{id}/logs/stream': (p) => rest(p, 'GET', `/jobs/${finishedJobId}/logs/stream`),
    'POST /jobs/{id}/cancel': async (p) => rest(p, 'POST', `/jobs/${await pendingJob()}/cancel`),
    'POST /jobs/{id}/force-complete': async (p) => rest(p, 'POST', `/jobs/${await pendingJob()}/force-complete`, { status: 'canceled' }),
    'DELETE /jobs/{id}/purge': async (p) => rest(p, 'DELETE', `/jobs/${await finishedJob()}/purge`),
    'POST /job-batches': (p) => rest(p, 'POST', '/job-batches', { name: `authz-${randomSuffix()}`, jobs: [{ name: 'b', command: ['true'] }] }),
    'GET /job-batches': (p) => rest(p, 'GET', '/job-batches?limit=5'),
    'GET /job-batches/{id}': (p) => rest(p, 'GET', `/job-batches/${ownerBatchId}`),
    'POST /job-batches/{id}/cancel': async (p) => rest(p, 'POST', `/job-batches/${await pendingBatch()}/cancel`),
    'POST /job-batches/{id}/force-complete': async (p) => rest(p, 'POST', `/job-batches/${await pendingBatch()}/force-complete`, { status: 'canceled' }),
    'DELETE /job-batches/{id}': async (p) => rest(p, 'DELETE', `/job-batches/${await finishedBatch()}`),
    'POST /users': (p) => rest(p, 'POST', '/users', { email: `authz-new-${randomSuffix()}@example.com`, password: `Pw-${randomSuffix()}-${randomSuffix()}`, role: 'viewer' }),
    'GET /users': (p) => rest(p, 'GET', '/users'),
    'GET /users/me': (p) => rest(p, 'GET', '/users/me'),
    'PATCH /users/me': async (p) => {
      const q = await freshUser(p);
      return rest(q, 'PATCH', '/users/me', { current_password: q.account.password, password: NEW_PASSWORD });
    },
    'GET /users/{id}': (p) => rest(p, 'GET', `/users/${owner.id}`),
    // The owner's limit is already 1: the admin's change changes nothing.
    'PATCH /users/{id}': (p) => rest(p, 'PATCH', `/users/${owner.id}`, { max_concurrent_jobs: 1 }),
    'POST /users/{id}/revoke-sessions': async (p) => rest(p, 'POST', `/users/${await revocable(p)}/revoke-sessions`),
    'GET /admin/limits': (p) => rest(p, 'GET', '/admin/limits'),
    'POST /admin/limits/global': (p) => rest(p, 'POST', '/admin/limits/global', { max_concurrent_jobs: defaultMax }),
    'POST /admin/limits/users/{id}': (p) => rest(p, 'POST', `/admin/limits/users/${owner.id}`, { max_concurrent_jobs: 1 }),
    'GET /admin/isolation': (p) => rest(p, 'GET', '/admin/isolation'),
    'GET /admin/status': (p) => rest(p, 'GET', '/admin/status'),
    'GET /admin/audit': (p) => rest(p, 'GET', '/admin/audit?limit=1'),
    'GET /admin/storage': (p) => rest(p, 'GET', '/admin/storage?limit=5'),
    // No retention policy is configured here: a run removes nothing.
    'POST /admin/retention/run': (p) => rest(p, 'POST', '/admin/retention/run'),

    // GraphQL queries
    'Query.health': (p) => gql(p, '{ health { status } }'),
    'Query.me': (p) => gql(p, '{ me { id } }'),
    'Query.job': (p) => gql(p, 'query($id: ID!) { job(id: $id) { id } }', { id: finishedJobId }),
    'Query.jobs': (p) => gql(p, '{ jobs(first: 5) { edges { node { id } } } }'),
    'Query.jobStats': (p) => gql(p, '{ jobStats { total } }'),
    'Query.batch': (p) => gql(p, 'query($id: ID!) { batch(id: $id) { id } }', { id: ownerBatchId }),
    'Query.batches': (p) => gql(p, '{ batches(first: 5) { edges { node { id } } } }'),
    'Query.user': (p) => gql(p, 'query($id: ID!) { user(id: $id) { id } }', { id: owner.id }),
    'Query.users': (p) => gql(p, '{ users { id } }'),
    'Query.limits': (p) => gql(p, '{ limits { defaultMaxConcurrentJobs } }'),
    'Query.isolation': (p) => gql(p, '{ isolation { level } }'),
    'Query.adminStatus': (p) => gql(p, '{ adminStatus { queue { pending } } }'),
    'Query.apiTokens': (p) => gql(p, '{ apiTokens { id } }'),
    'Query.auditLog': (p) => gql(p, '{ auditLog(first: 1) { __typename } }'),
    'Query.storage': (p) => gql(p, '{ storage(first: 5) { totals { jobs } } }'),

    // GraphQL mutations
    'Mutation.login': (p) => gql(p, 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }', { e: p.account.email, p: p.account.password }),
    'Mutation.logout': async (p) => gql(await freshSession(p), 'mutation { logout }'),
    'Mutation.logoutAll': async (p) => gql(await freshUser(p), 'mutation { logoutAll }'),
    'Mutation.revokeSessions': async (p) => gql(p, 'mutation($id: ID!) { revokeSessions(userId: $id) }', { id: await revocable(p) }),
    'Mutation.createApiToken': (p) => gql(p, 'mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }', { input: { name: `authz-${randomSuffix()}`, scopes: ['JOBS_READ'], expiresInDays: 1 } }),
    'Mutation.revokeApiToken': async (p) => gql(p, 'mutation($id: ID!) { revokeApiToken(id: $id) }', { id: (await apiToken(owner.token)).id }),
    'Mutation.updateMe': async (p) => {
      const q = await freshUser(p);
      return gql(q, 'mutation($input: UpdateMeInput!) { updateMe(input: $input) { id } }', { input: { currentPassword: q.account.password, password: NEW_PASSWORD } });
    },
    'Mutation.submitJob': (p) => gql(p, 'mutation($input: SubmitJobInput!) { submitJob(input: $input) { id } }', { input: { name: 'authz-submit', command: ['true'] } }),
    'Mutation.cancelJob': async (p) => gql(p, 'mutation($id: ID!) { cancelJob(id: $id) { id } }', { id: await pendingJob() }),
    'Mutation.forceCompleteJob': async (p) => gql(p, 'mutation($id: ID!) { forceCompleteJob(id: $id, input: { status: CANCELED }) { id } }', { id: await pendingJob() }),
    'Mutation.purgeJob': async (p) => gql(p, 'mutation($id: ID!) { purgeJob(id: $id) }', { id: await finishedJob() }),
    'Mutation.createBatch': (p) => gql(p, 'mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }', { input: { name: `authz-${randomSuffix()}`, jobs: [{ name: 'b', command: ['true'] }] } }),
    'Mutation.cancelBatch': async (p) => gql(p, 'mutation($id: ID!) { cancelBatch(id: $id) { id } }', { id: await pendingBatch() }),
    'Mutation.forceCompleteBatch': async (p) => gql(p, 'mutation($id: ID!) { forceCompleteBatch(id: $id, input: { status: CANCELED }) { id } }', { id: await pendingBatch() }),
    'Mutation.deleteBatch': async (p) => gql(p, 'mutation($id: ID!) { deleteBatch(id: $id) }', { id: await finishedBatch() }),
    'Mutation.createUser': (p) => gql(p, 'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }', { input: { email: `authz-new-${randomSuffix()}@example.com`, password: `Pw-${randomSuffix()}-${randomSuffix()}`, role: 'VIEWER' } }),
    'Mutation.updateUser': (p) => gql(p, 'mutation($id: ID!) { updateUser(id: $id, input: { maxConcurrentJobs: 1 }) { id } }', { id: owner.id }),
    'Mutation.setDefaultJobLimit': (p) => gql(p, 'mutation($max: Int!) { setDefaultJobLimit(max: $max) { defaultMaxConcurrentJobs } }', { max: defaultMax }),
    'Mutation.runRetention': (p) => gql(p, 'mutation { runRetention { jobsDeleted } }'),
    'Mutation.setUserJobLimit': (p) => gql(p, 'mutation($id: ID!) { setUserJobLimit(userId: $id, max: 1) { defaultMaxConcurrentJobs } }', { id: owner.id }),

    // Subscriptions
    'Subscription.jobEvents': (p) => subscribe(p, JOB_EVENTS, {}, pokeJobs),
    'Subscription.jobUpdated': (p) => subscribe(p, JOB_UPDATED, { id: finishedJobId }),
    'Subscription.jobLog': (p) => subscribe(p, JOB_LOG, { id: finishedJobId }),
  };

  const principals = (): Record<Who, Principal> => ({
    anonymous: { who: 'anonymous', token: null, account: owner },
    viewer: { who: 'viewer', token: viewer.token, account: viewer },
    owner: { who: 'owner', token: owner.token, account: owner },
    other: { who: 'other', token: other.token, account: other },
    admin: { who: 'admin', token: admin.token, account: admin },
    token: { who: 'token', token: narrowToken, account: owner },
  });

  beforeAll(async () => {
    s = await startServer(provider);
    const adminMe = await s.graphql('{ me { id email } }');
    admin = { id: adminMe.data.me.id, email: adminMe.data.me.email, password: s.env.ADMIN_PASSWORD!, token: s.adminToken };
    const login = async (a: Account) => ({ ...a, token: await s.token(a.email, a.password) });
    [owner, other, viewer, untouchable] = await Promise.all([
      createAccount('operator', { max_concurrent_jobs: 1 }).then(login),
      createAccount('operator').then(login),
      createAccount('viewer').then(login),
      createAccount('operator'),
    ]);
    defaultMax = (await must('GET', '/admin/limits', s.adminToken)).default_max_concurrent_jobs;

    // A finished job of the owner with output on both streams; then the
    // owner's one slot is held, so their later jobs stay pending.
    finishedJobId = (await runJob(s, owner.token, { name: 'authz-finished', command: ['sh', '-c', 'echo out; echo err >&2'] })).job.id;
    const holder = await submit(s, owner.token, { name: 'authz-holder', command: ['sleep', '300'] });
    await waitRunning(s, owner.token, holder.id);
    ownerBatchId = await pendingBatch();

    // The narrow API token (until API tokens exist, a token that fails: its cells then show 401).
    try {
      narrowToken = (await apiToken(owner.token, ['jobs:read'])).token;
    } catch {
      narrowToken = 'jrt_not-created';
    }
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('the table names every REST route and GraphQL root field and subscription of the app, and nothing else', () => {
    const app = appKeys();
    const table = Object.keys(TABLE);
    expect(new Set(app).size, 'duplicate route or field keys').toBe(app.length);
    expect(app.filter((k) => !(k in TABLE)), 'in the app but not in the table').toEqual([]);
    expect(table.filter((k) => !app.includes(k)), 'in the table but not in the app').toEqual([]);
    expect(Object.keys(CELLS).sort(), 'every table entry has its request').toEqual([...table].sort());
  });

  it('the token\'s missing batch scopes answer 403 for an unknown batch id too, so they tell nothing of which batches exist', async () => {
    const unknown = '01a00000-0000-7000-8000-000000000000';
    const got = await Promise.all([
      rest(narrowToken, 'GET', `/job-batches/${unknown}`),
      rest(narrowToken, 'POST', `/job-batches/${unknown}/cancel`),
      rest(narrowToken, 'POST', `/job-batches/${unknown}/force-complete`, { status: 'canceled' }),
      rest(narrowToken, 'DELETE', `/job-batches/${unknown}`),
      gql(narrowToken, 'query($id: ID!) { batch(id: $id) { id } }', { id: unknown }),
    ]);
    expect(got.map((a) => a.answer), got.map((a) => a.detail).join('\n')).toEqual(['403', '403', '403', '403', 'FORBIDDEN']);
  });

  it.concurrent.for(Object.keys(TABLE))('%s', async (key, { expect: check }) => {
    const cell = CELLS[key];
    check(cell, `no request for ${key}`).toBeDefined();
    const ps = principals();
    const results = await Promise.all(
      WHO.map(async (who): Promise<[Who, Answer]> => {
        try {
          return [who, await cell!(ps[who])];
        } catch (err) {
          return [who, { answer: 'setup failed', detail: String((err as Error).message ?? err).slice(0, 300) }];
        }
      }),
    );
    const got = Object.fromEntries(results.map(([w, a]) => [w, a.answer])) as Row;
    const wrong = results.filter(([w, a]) => a.answer !== TABLE[key]![w]).map(([w, a]) => `  ${w}: expected ${TABLE[key]![w]}, got ${a.detail}`);
    check(got, `${key}\n${wrong.join('\n')}`).toEqual(TABLE[key]);
  });
});
