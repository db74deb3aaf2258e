// The audit trail (issue #12): who did what, when, from where, on what, and
// how it ended; read by admins over REST (newest first, filters, cursor
// pages) and GraphQL. Plus the bootstrap rule: whenever no active admin
// exists at start, ADMIN_EMAIL becomes one.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { PROVIDERS, createTestDatabase, type Provider, type TestDatabase } from '../helpers/db.js';
import { REPO_ROOT, submit, waitTerminal } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, restClient, startServer, testServerEnv, tokenClient, type TestServer } from '../helpers/server.js';
import { ISO_UTC, randomSuffix, tokenRequest } from './support.js';
import { AUDIT_KEYS, codes, createApiToken, openGate, waitForGate } from './identitySupport.js';

interface Entry {
  id: string;
  at: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: 'success' | 'failure' | 'denied';
  client_address: string | null;
}

const TARGET_TYPES = ['user', 'job', 'batch', 'token', 'session', 'limits'];
const LOOPBACK = /^(::ffff:)?127\.0\.0\.1$|^::1$/;
const ENTRY_FIELDS = 'id at actorId action targetType targetId outcome clientAddress';

describe.each(PROVIDERS)('audit trail on %s', (provider) => {
  let s: TestServer;
  let adminId: string;
  let op: { id: string; email: string; password: string; token: string };
  let jobId: string;
  let batchId: string;
  let tokenId: string;
  let gateDir: string | undefined;
  /** What the sequence of actions must have left, oldest first. */
  const expected: { what: string; entry: Partial<Entry> }[] = [];
  const expectEntry = (what: string, entry: Partial<Entry>) => expected.push({ what, entry });

  const audit = (query = '', token = s.adminToken) => s.request('GET', `/admin/audit${query}`, { token });
  const all = async (query = '') => {
    const res = await audit(`?limit=1000${query}`);
    expect(res.status, res.text).toBe(200);
    return res.body as Entry[];
  };

  beforeAll(async () => {
    s = await startServer(provider);
    adminId = (await s.graphql('{ me { id } }')).data.me.id;

    // 1. A failed login of an email nobody has.
    const unknown = await tokenRequest(s.api, { username: `nobody-${randomSuffix()}@example.com`, password: 'Wrong-password-1' });
    expect(unknown.status).toBe(401);
    expectEntry('failed login, unknown email', { action: 'auth.login', outcome: 'failure', actor_id: null, target_type: 'user', target_id: null });

    // 2. The admin creates an operator.
    const email = `audited-${randomSuffix()}@example.com`;
    const password = `Pw-${randomSuffix()}-${randomSuffix()}`;
    const created = await s.request('POST', '/users', { token: s.adminToken, body: { email, password, role: 'operator' } });
    expect(created.status).toBe(201);
    expectEntry('user.create', { action: 'user.create', outcome: 'success', actor_id: adminId, target_type: 'user', target_id: created.body.id });

    // 3. A wrong password for that operator, then 4. the right one.
    expect((await tokenRequest(s.api, { username: email, password: 'Wrong-password-1' })).status).toBe(401);
    expectEntry('failed login, known email', { action: 'auth.login', outcome: 'failure', target_type: 'user', target_id: created.body.id });
    op = { id: created.body.id, email, password, token: await s.token(email, password) };
    expectEntry('login', { action: 'auth.login', outcome: 'success', actor_id: op.id });

    // 5-6. An API token created and revoked.
    const t = await createApiToken(s, op.token, ['jobs:read']);
    tokenId = t.id;
    expectEntry('token.create', { action: 'token.create', outcome: 'success', actor_id: op.id, target_type: 'token', target_id: t.id });
    expect((await s.request('DELETE', `/auth/tokens/${t.id}`, { token: op.token })).status).toBe(204);
    expectEntry('token.revoke', { action: 'token.revoke', outcome: 'success', actor_id: op.id, target_type: 'token', target_id: t.id });

    // 7. The admin changes the operator; 8-9. limits.
    expect((await s.request('PATCH', `/users/${op.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 3 } })).status).toBe(200);
    expectEntry('user.update', { action: 'user.update', outcome: 'success', actor_id: adminId, target_type: 'user', target_id: op.id });
    expect((await s.request('POST', '/admin/limits/global', { token: s.adminToken, body: { max_concurrent_jobs: 6 } })).status).toBe(200);
    expectEntry('limits.set_default', { action: 'limits.set_default', outcome: 'success', actor_id: adminId, target_type: 'limits' });
    expect((await s.request('POST', `/admin/limits/users/${op.id}`, { token: s.adminToken, body: { max_concurrent_jobs: 2 } })).status).toBe(200);
    expectEntry('limits.set_user', { action: 'limits.set_user', outcome: 'success', actor_id: adminId, target_id: op.id });

    // 10-13. A job: submitted, canceled, refused a force-complete (operator), purged.
    // A gate jobs can see (as jobGate makes, which only works inside a test).
    gateDir = mkdtempSync(join('/var/tmp', 'jobrunner-audit-'));
    chmodSync(gateDir, 0o755);
    const gate = join(gateDir, 'open');
    try {
      const job = await submit(s, op.token, { command: waitForGate(gate) });
      jobId = job.id;
      expectEntry('job.submit', { action: 'job.submit', outcome: 'success', actor_id: op.id, target_type: 'job', target_id: job.id });
      expect((await s.request('POST', `/jobs/${job.id}/cancel`, { token: op.token })).status).toBe(200);
      expectEntry('job.cancel', { action: 'job.cancel', outcome: 'success', actor_id: op.id, target_type: 'job', target_id: job.id });
      await waitTerminal(s, op.token, job.id);
      const denied = await s.request('POST', `/jobs/${job.id}/force-complete`, { token: op.token, body: { status: 'success' } });
      expect(denied.status).toBe(403);
      expectEntry('job.force_complete denied', { action: 'job.force_complete', outcome: 'denied', actor_id: op.id, target_type: 'job', target_id: job.id });
      expect((await s.request('DELETE', `/jobs/${job.id}/purge`, { token: op.token })).status).toBe(204);
      expectEntry('job.purge', { action: 'job.purge', outcome: 'success', actor_id: op.id, target_type: 'job', target_id: job.id });

      // 14-16. A batch: created, canceled, deleted.
      const batch = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'audited', jobs: [{ name: 'j', command: waitForGate(gate) }] } });
      expect(batch.status).toBe(201);
      batchId = batch.body.id;
      expectEntry('batch.create', { action: 'batch.create', outcome: 'success', actor_id: op.id, target_type: 'batch', target_id: batchId });
      expect((await s.request('POST', `/job-batches/${batchId}/cancel`, { token: op.token })).status).toBe(200);
      expectEntry('batch.cancel', { action: 'batch.cancel', outcome: 'success', actor_id: op.id, target_type: 'batch', target_id: batchId });
      await waitTerminal(s, op.token, batch.body.jobs[0].id);
      expect((await s.request('DELETE', `/job-batches/${batchId}`, { token: op.token })).status).toBe(204);
      expectEntry('batch.delete', { action: 'batch.delete', outcome: 'success', actor_id: op.id, target_type: 'batch', target_id: batchId });
    } finally {
      openGate(gate);
    }

    // 17. A conflict: the same email again.
    const dup = await s.request('POST', '/users', { token: s.adminToken, body: { email, password, role: 'viewer' } });
    expect(dup.status).toBe(409);
    expectEntry('user.create conflict', { action: 'user.create', outcome: 'failure', actor_id: adminId, target_type: 'user' });
  });
  afterAll(async () => {
    await s?.stop();
    if (gateDir) rmSync(gateDir, { recursive: true, force: true });
  });

  it('GET /admin/audit: the documented fields, newest first, every action of the sequence in order', async () => {
    const res = await audit('?limit=1000');
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('x-next-cursor')).toBeNull();
    const entries = res.body as Entry[];
    for (const e of entries) {
      expect(Object.keys(e).sort()).toEqual(AUDIT_KEYS);
      expect(e.at).toMatch(ISO_UTC);
      expect(['success', 'failure', 'denied']).toContain(e.outcome);
      expect(TARGET_TYPES).toContain(e.target_type);
      expect(e.client_address ?? '', `${e.action} client_address`).toMatch(LOOPBACK);
    }
    expect(new Set(entries.map((e) => e.id)).size).toBe(entries.length);
    for (let i = 1; i < entries.length; i++) expect(Date.parse(entries[i - 1]!.at)).toBeGreaterThanOrEqual(Date.parse(entries[i]!.at));

    // Oldest first, each expected entry after the previous one.
    const oldestFirst = [...entries].reverse();
    let from = 0;
    for (const { what, entry } of expected) {
      const at = oldestFirst.findIndex((e, i) => i >= from && Object.entries(entry).every(([k, v]) => e[k as keyof Entry] === v));
      expect(at, `${what}: no entry ${JSON.stringify(entry)} after position ${from}; entries: ${JSON.stringify(oldestFirst.slice(from).map((e) => [e.action, e.outcome, e.actor_id, e.target_type, e.target_id]))}`).toBeGreaterThanOrEqual(0);
      from = at + 1;
    }
    // Reads are not audited: no entry names the jobs list or the audit log.
    expect(entries.every((e) => /^(auth|token|user|limits|job|batch)\./.test(e.action))).toBe(true);
  });

  it('filters: actor_id, action, target_id (and combined)', async () => {
    const byActor = await all(`&actor_id=${op.id}`);
    expect(byActor.length).toBeGreaterThanOrEqual(10);
    expect(byActor.every((e) => e.actor_id === op.id)).toBe(true);
    expect(new Set(byActor.map((e) => e.action))).toEqual(new Set(['auth.login', 'token.create', 'token.revoke', 'job.submit', 'job.cancel', 'job.force_complete', 'job.purge', 'batch.create', 'batch.cancel', 'batch.delete']));

    const submits = await all('&action=job.submit');
    expect(submits.map((e) => e.target_id)).toEqual([jobId]);

    const logins = await all('&action=auth.login');
    expect(logins.every((e) => e.action === 'auth.login')).toBe(true);
    expect(logins.filter((e) => e.outcome === 'failure').length).toBeGreaterThanOrEqual(2);
    expect(logins.filter((e) => e.outcome === 'success').length).toBeGreaterThanOrEqual(2);

    const onJob = await all(`&target_id=${jobId}`);
    expect(onJob.map((e) => e.action)).toEqual(['job.purge', 'job.force_complete', 'job.cancel', 'job.submit']);
    const onToken = await all(`&target_id=${tokenId}`);
    expect(onToken.map((e) => e.action)).toEqual(['token.revoke', 'token.create']);
    const onBatch = await all(`&target_id=${batchId}`);
    expect(onBatch.map((e) => e.action)).toEqual(['batch.delete', 'batch.cancel', 'batch.create']);

    const combined = await all(`&actor_id=${adminId}&action=user.update&target_id=${op.id}`);
    expect(combined).toHaveLength(1);
    expect(combined[0]).toMatchObject({ actor_id: adminId, action: 'user.update', target_id: op.id, outcome: 'success' });
    expect(await all('&action=no.such.action')).toEqual([]);
  });

  it('limit + X-Next-Cursor walk every entry once; limit outside 1..1000 → 422', async () => {
    const everything = await all();
    expect(everything.length).toBeGreaterThan(12);
    const walked: Entry[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const res = await audit(`?limit=5${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      expect(res.status, res.text).toBe(200);
      expect((res.body as Entry[]).length).toBeLessThanOrEqual(5);
      walked.push(...(res.body as Entry[]));
      after = res.headers.get('x-next-cursor');
      if (after) expect(res.body).toHaveLength(5);
      pages++;
      expect(pages).toBeLessThan(100);
    } while (after);
    expect(walked.map((e) => e.id)).toEqual(everything.map((e) => e.id));
    expect(pages).toBe(Math.ceil(everything.length / 5));

    // The default page is at most 100.
    const byDefault = await audit();
    expect(byDefault.status).toBe(200);
    expect((byDefault.body as Entry[]).map((e) => e.id)).toEqual(everything.slice(0, 100).map((e) => e.id));

    for (const bad of ['?limit=0', '?limit=1001', '?limit=-1', '?limit=abc']) {
      const res = await audit(bad);
      expect(res.status, bad).toBe(422);
      expect(res.body.detail[0].loc).toEqual(['query', 'limit']);
    }
  });

  it('admins only: operators, viewers and non-admin API tokens get 403; no token 401', async () => {
    const viewer = await s.user('viewer');
    for (const token of [op.token, viewer.token]) {
      const res = await audit('', token);
      expect(res.status, res.text).toBe(403);
      expect(res.body).toEqual({ detail: expect.any(String) });
    }
    expect((await audit('', '')).status).toBe(401);
    const jobsOnly = await createApiToken(s, s.adminToken, ['jobs:read']);
    expect((await audit('', jobsOnly.token)).status).toBe(403);
    const adminScope = await createApiToken(s, s.adminToken, ['admin']);
    const viaToken = await audit('?limit=3', adminScope.token);
    expect(viaToken.status, viaToken.text).toBe(200);
    // The token was just created: its creation is the newest entry.
    expect((viaToken.body as Entry[])[0]).toMatchObject({ action: 'token.create', target_id: adminScope.id, actor_id: adminId, outcome: 'success' });
    expect(codes(await s.graphql('{ auditLog { edges { node { id } } } }', {}, op.token))).toEqual(['FORBIDDEN']);
    expect(codes(await s.graphql('{ auditLog { edges { node { id } } } }', {}, viewer.token))).toEqual(['FORBIDDEN']);
  });

  it('GraphQL auditLog: the same entries as REST, paged and filtered', async () => {
    const rest = await all();
    const toRest = (n: any): Entry => ({
      id: n.id, at: n.at, actor_id: n.actorId, action: n.action, target_type: n.targetType, target_id: n.targetId, outcome: n.outcome, client_address: n.clientAddress,
    });
    const walked: Entry[] = [];
    let after: string | null = null;
    for (let page = 0; page < 100; page++) {
      const r: { data?: any; errors?: any[] } = await s.graphql(
        `query ($after: String) { auditLog(first: 7, after: $after) { edges { cursor node { ${ENTRY_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
      walked.push(...r.data.auditLog.edges.map((e: any) => toRest(e.node)));
      if (!r.data.auditLog.pageInfo.hasNextPage) break;
      after = r.data.auditLog.pageInfo.endCursor;
    }
    expect(walked.map((e) => e.id)).toEqual(rest.map((e) => e.id));
    for (const [i, e] of walked.entries()) {
      expect({ ...e, at: Date.parse(e.at) }).toEqual({ ...rest[i]!, at: Date.parse(rest[i]!.at) });
    }

    const filtered = await s.graphql(
      `query ($a: ID, $t: ID) { auditLog(actorId: $a, action: "job.cancel", targetId: $t) { edges { node { ${ENTRY_FIELDS} } } } }`,
      { a: op.id, t: jobId },
    );
    expect(filtered.errors).toBeUndefined();
    expect(filtered.data.auditLog.edges.map((e: any) => e.node)).toEqual([
      expect.objectContaining({ actorId: op.id, action: 'job.cancel', targetType: 'job', targetId: jobId, outcome: 'success' }),
    ]);
  });
});

// ---- bootstrap: the first admin whenever no active admin exists -------------

describe.each(PROVIDERS)('audit retention on %s', (provider) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(provider, { AUDIT_RETENTION_DAYS: '30' });
  });
  afterAll(async () => s?.stop());

  it('entries older than AUDIT_RETENTION_DAYS are pruned, newer ones kept', async () => {
    const day = 86_400_000;
    const prisma = s.app.db.prisma;
    const mk = (id: string, ageDays: number) => ({ id, at: new Date(Date.now() - ageDays * day), actorId: null, action: 'auth.login', targetType: 'user', targetId: null, outcome: 'failure', clientAddress: '192.0.2.1', detail: null });
    await prisma.auditEntry.createMany({ data: [mk('00000000-0000-7000-8000-000000000001', 31), mk('00000000-0000-7000-8000-000000000002', 29)] });
    expect(await s.app.services.audit.prune()).toBe(1);
    const left = await prisma.auditEntry.findMany({ where: { clientAddress: '192.0.2.1' }, select: { id: true } });
    expect(left.map((e) => e.id)).toEqual(['00000000-0000-7000-8000-000000000002']);
    // The admin's own login (this server's start) is recent: kept.
    expect((await s.request('GET', '/admin/audit?action=auth.login', { token: s.adminToken })).body.length).toBeGreaterThan(1);
  });
});

const exec = promisify(execFile);

/** `create-user` of the real CLI against `db` (password in NEW_USER_PASSWORD). */
async function cliCreateUser(db: TestDatabase, email: string, role: string, password: string): Promise<string> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...testServerEnv(db), NEW_USER_PASSWORD: password };
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', 'src/main.ts', 'create-user', '--email', email, '--role', role], { cwd: REPO_ROOT, env, timeout: 60_000 });
  return stdout;
}

/** A server started on an existing database (what startServer does, minus creating the database and logging in). */
async function startOn(db: TestDatabase): Promise<{ app: App; request: TestServer['request']; token: TestServer['token'] }> {
  const config = loadConfig(testServerEnv(db));
  const app = await buildApp(config, { log: createLogger(config.logLevel) });
  const api = `${await app.start()}${config.apiPrefix}`;
  return { app, request: restClient(api), token: tokenClient(api) };
}

describe.each(PROVIDERS)('bootstrap admin on %s', (provider: Provider) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });
  async function freshDb() {
    const db = await createTestDatabase(provider);
    cleanup.push(() => db.drop());
    return db;
  }
  async function start(db: TestDatabase) {
    const srv = await startOn(db);
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await srv.app.stop(0);
    };
    cleanup.push(stop);
    return { ...srv, stop };
  }
  const whoAmI = async (srv: { request: TestServer['request'] }, token: string) => (await srv.request('GET', '/users', { token })).status;

  it('create-user before the first start: the ADMIN_EMAIL admin is still created and logs in', async () => {
    const db = await freshDb();
    const early = `early-${randomSuffix()}@example.com`;
    expect(await cliCreateUser(db, early, 'operator', 'Early-pass-123')).toMatch(/created operator/);
    const srv = await start(db);
    const adminToken = await srv.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    const users = await srv.request('GET', '/users', { token: adminToken });
    expect(users.status).toBe(200);
    expect((users.body as { email: string; role: string; is_active: boolean }[]).map((u) => [u.email, u.role, u.is_active]).sort()).toEqual([
      [ADMIN_EMAIL, 'admin', true], [early, 'operator', true],
    ].sort());
    // The CLI's user is untouched.
    expect(await whoAmI(srv, await srv.token(early, 'Early-pass-123'))).toBe(403);
  });

  it('a user with ADMIN_EMAIL but no active admin: that user is made an active admin, password unchanged', async () => {
    const db = await freshDb();
    await cliCreateUser(db, ADMIN_EMAIL, 'operator', 'Own-password-123');
    const srv = await start(db);
    const token = await srv.token(ADMIN_EMAIL, 'Own-password-123');
    const users = await srv.request('GET', '/users', { token });
    expect(users.status, users.text).toBe(200);
    expect(users.body).toEqual([expect.objectContaining({ email: ADMIN_EMAIL, role: 'admin', is_active: true })]);
    await expect(srv.token(ADMIN_EMAIL, ADMIN_PASSWORD)).rejects.toThrow(/401/);
  });

  it('the only admin deactivated and demoted: at the next start ADMIN_EMAIL is an active admin again', async () => {
    const db = await freshDb();
    const first = await start(db);
    const adminToken = await first.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    const other = await first.request('POST', '/users', { token: adminToken, body: { email: `second-${randomSuffix()}@example.com`, password: 'Second-pass-123', role: 'admin' } });
    expect(other.status).toBe(201);
    const otherToken = await first.token(other.body.email, 'Second-pass-123');
    const adminId = ((await first.request('GET', '/users', { token: adminToken })).body as { id: string; email: string }[]).find((u) => u.email === ADMIN_EMAIL)!.id;
    // The second admin demotes and deactivates the first, then is demoted in the database.
    expect((await first.request('PATCH', `/users/${adminId}`, { token: otherToken, body: { role: 'viewer', is_active: false } })).status).toBe(200);
    await first.app.db.prisma.user.update({ where: { id: other.body.id }, data: { role: 'operator' } });
    await first.stop();

    const second = await start(db);
    const token = await second.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    expect(await whoAmI(second, token)).toBe(200);
    const users = (await second.request('GET', '/users', { token })).body as { id: string; email: string; role: string; is_active: boolean }[];
    expect(users.find((u) => u.email === ADMIN_EMAIL)).toMatchObject({ id: adminId, role: 'admin', is_active: true });
    expect(users.find((u) => u.id === other.body.id)).toMatchObject({ role: 'operator' });
  });

  it('an active admin under another email: no ADMIN_EMAIL user is created', async () => {
    const db = await freshDb();
    const boss = `boss-${randomSuffix()}@example.com`;
    await cliCreateUser(db, boss, 'admin', 'Boss-pass-1234');
    const srv = await start(db);
    await expect(srv.token(ADMIN_EMAIL, ADMIN_PASSWORD)).rejects.toThrow(/401/);
    const token = await srv.token(boss, 'Boss-pass-1234');
    const users = (await srv.request('GET', '/users', { token })).body as { email: string }[];
    expect(users.map((u) => u.email)).toEqual([boss]);
  });
});
