// What the REST layer answers to bodies it cannot use: Pydantic-shaped 422s,
// 413 over the size limit, 404/405 for routes, and never a 500 — checked by
// example and, on SQLite, with random bodies (fast-check).
import fc from 'fast-check';
import { z } from 'zod';
import * as S from '../../src/rest/schemas.js';
import { createBatchInput, forceCompleteBatchInput, MAX_BATCH_JOBS } from '../../src/services/batches.js';
import { submitJobInput } from '../../src/services/jobSpec.js';
import { forceCompleteInput } from '../../src/services/jobs.js';
import { createUserInput, updateMeInput, updateUserInput } from '../../src/services/users.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { USER_READ_KEYS, httpRequest, randomSuffix, tokenRequest, type RawResponse } from './support.js';

interface Issue {
  type: string;
  loc: (string | number)[];
  msg: string;
  input?: unknown;
}

/** A 422 whose detail is a non-empty list of Pydantic v2 issues, each with a `loc` starting at body/query/path. */
function expect422(res: { status: number; body: any; text: string }, what = ''): Issue[] {
  expect(res.status, `${what} ${res.text.slice(0, 200)}`).toBe(422);
  expect(Object.keys(res.body)).toEqual(['detail']);
  const detail = res.body.detail as Issue[];
  expect(Array.isArray(detail) && detail.length > 0).toBe(true);
  for (const issue of detail) {
    expect(typeof issue.type).toBe('string');
    expect(typeof issue.msg).toBe('string');
    expect(Array.isArray(issue.loc)).toBe(true);
    expect(['body', 'query', 'path']).toContain(issue.loc[0]);
  }
  return detail;
}

const validUser = () => ({ email: `v-${randomSuffix()}@example.com`, password: 'Valid-pass-123', role: 'viewer' });

// ---- random bodies: the contract's rules and the generators -------------------

type Verdict = 'valid' | 'invalid' | 'unknown';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const codePoints = (s: string) => [...s].length;
const and = (...vs: Verdict[]): Verdict => (vs.includes('invalid') ? 'invalid' : vs.includes('unknown') ? 'unknown' : 'valid');

/** The contract's rules, written independently of src/: 'unknown' where the contract leaves room. */
const rules = {
  email(v: unknown): Verdict {
    if (typeof v !== 'string' || !v.includes('@')) return 'invalid';
    return /^[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(v) && v.length <= 254 ? 'valid' : 'unknown';
  },
  password(v: unknown): Verdict {
    if (typeof v !== 'string') return 'invalid';
    const lengths = [v.length, codePoints(v)];
    if (lengths.every((n) => n >= 8 && n <= 256)) return 'valid';
    if (lengths.every((n) => n < 8 || n > 256)) return 'invalid';
    return 'unknown';
  },
  role: (v: unknown): Verdict => (typeof v === 'string' && ['admin', 'operator', 'viewer'].includes(v) ? 'valid' : 'invalid'),
  isActive: (v: unknown): Verdict => (v === undefined || typeof v === 'boolean' ? 'valid' : 'invalid'),
  limit: (v: unknown, nullable: boolean): Verdict =>
    (nullable && v === null) || (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 10000) ? 'valid' : 'invalid',
};

function onlyKeys(body: Record<string, unknown>, allowed: string[]): Verdict {
  return Object.keys(body).every((k) => allowed.includes(k)) ? 'valid' : 'invalid';
}

function userCreateVerdict(body: unknown): Verdict {
  if (!isObject(body)) return 'invalid';
  if (!(Object.hasOwn(body, 'email')) || !(Object.hasOwn(body, 'password')) || !(Object.hasOwn(body, 'role'))) return 'invalid';
  return and(
    onlyKeys(body, ['email', 'password', 'role', 'is_active', 'max_concurrent_jobs']),
    rules.email(body.email),
    rules.password(body.password),
    rules.role(body.role),
    rules.isActive(body.is_active),
    Object.hasOwn(body, 'max_concurrent_jobs') ? rules.limit(body.max_concurrent_jobs, true) : 'valid',
  );
}

function userUpdateVerdict(body: unknown): Verdict {
  if (!isObject(body)) return 'invalid';
  return and(
    onlyKeys(body, ['role', 'password', 'is_active', 'max_concurrent_jobs']),
    Object.hasOwn(body, 'role') ? rules.role(body.role) : 'valid',
    Object.hasOwn(body, 'password') ? rules.password(body.password) : 'valid',
    Object.hasOwn(body, 'is_active') ? rules.isActive(body.is_active) : 'valid',
    Object.hasOwn(body, 'max_concurrent_jobs') ? rules.limit(body.max_concurrent_jobs, true) : 'valid',
  );
}

const limitVerdict = (nullable: boolean) => (body: unknown): Verdict => {
  if (!isObject(body) || !(Object.hasOwn(body, 'max_concurrent_jobs'))) return 'invalid';
  return and(onlyKeys(body, ['max_concurrent_jobs']), rules.limit(body.max_concurrent_jobs, nullable));
};

const FIELD_NAMES = ['email', 'password', 'role', 'is_active', 'max_concurrent_jobs', 'username', 'grant_type', '__proto__', 'constructor', 'id'];

const anyString = fc.oneof(
  { weight: 4, arbitrary: fc.string() },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme' }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary' }) },
  // Huge strings (2..10 KB), built by repetition: generating them char by char is slow.
  { weight: 1, arbitrary: fc.tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }), fc.integer({ min: 2000, max: 10240 })).map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n)) },
  { weight: 1, arbitrary: fc.constantFrom('admin', 'operator', 'viewer', 'a@b.co', '', ' ', 'null', '\u0000', '𝒜dmin') },
);
const anyNumber = fc.oneof(fc.integer(), fc.integer({ min: -2, max: 10002 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -0, 1e21, 2 ** 53, 10000.5));
const anyKey = fc.oneof(fc.constantFrom(...FIELD_NAMES), fc.string({ maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 10 }));
const { anyJson } = fc.letrec<{ anyJson: unknown }>((tie) => ({
  anyJson: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyString,
    anyNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('anyJson'), { maxLength: 6 }),
    fc.dictionary(anyKey, tie('anyJson'), { maxKeys: 6 }),
  ),
}));
const anyObject = fc.dictionary(anyKey, anyJson, { maxKeys: 8 });

const validEmail = fc.tuple(fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,20}$/), fc.constantFrom('example.com', 'test.example.org', 'x.io')).map(([l, d]) => `${l}-${randomSuffix()}@${d}`);
// Valid passwords cost an argon2 hash each: keep them a minority.
const maybePassword = fc.oneof({ weight: 1, arbitrary: fc.string({ minLength: 8, maxLength: 40 }) }, { weight: 3, arbitrary: anyJson });
const maybeRole = fc.oneof(fc.constantFrom('admin', 'operator', 'viewer'), anyJson);
const maybeBool = fc.oneof(fc.boolean(), anyJson);
const maybeLimit = fc.oneof(fc.integer({ min: 1, max: 10000 }), fc.constant(null), anyNumber, anyJson);
const withExtra = <T extends Record<string, unknown>>(arb: fc.Arbitrary<T>) =>
  fc.tuple(arb, fc.option(fc.tuple(anyKey, anyJson), { freq: 4 })).map(([o, extra]) => (extra ? { ...o, [extra[0]]: extra[1] } : o));

const nearUserCreate = withExtra(
  fc.record(
    { email: fc.oneof(validEmail, anyJson), password: maybePassword, role: maybeRole, is_active: maybeBool, max_concurrent_jobs: maybeLimit },
    { requiredKeys: ['email', 'password', 'role'] },
  ),
);
const nearUserUpdate = withExtra(fc.record({ role: maybeRole, password: maybePassword, is_active: maybeBool, max_concurrent_jobs: maybeLimit }, { requiredKeys: [] }));
const nearLimit = withExtra(fc.record({ max_concurrent_jobs: maybeLimit }, { requiredKeys: [] }));

/** What the server gets out of the text: the parsed JSON, or nothing when it is not JSON. */
function parsed(text: string): { json: true; value: unknown } | { json: false } {
  try {
    return { json: true, value: JSON.parse(text) };
  } catch {
    return { json: false };
  }
}

/** A body as the client sends it: mostly JSON, sometimes any text at all. */
const bodyOf = (near: fc.Arbitrary<unknown>) =>
  fc
    .oneof(
      { weight: 3, arbitrary: anyJson.map((v) => JSON.stringify(v)) },
      { weight: 3, arbitrary: anyObject.map((v) => JSON.stringify(v)) },
      { weight: 3, arbitrary: near.map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: anyString },
    )
    .map((text) => ({ text, ...parsed(text) }));

const formBody = fc.oneof(
  anyString,
  fc.array(fc.tuple(fc.oneof(fc.constantFrom('username', 'password', 'grant_type', 'scope', 'client_id'), anyKey), anyString), { maxLength: 6 }).map((pairs) => new URLSearchParams(pairs).toString()),
  fc.tuple(anyString, anyString, fc.option(anyString)).map(([u, p, g]) => new URLSearchParams({ username: u, password: p, ...(g !== null && { grant_type: g }) }).toString()),
);

describe.each(PROVIDERS)('request validation on %s', (provider) => {
  let s: TestServer;
  let victimId: string;

  beforeAll(async () => {
    s = await startServer(provider);
    const victim = await s.request('POST', '/users', { token: s.adminToken, body: validUser() });
    victimId = victim.body.id;
  });
  afterAll(async () => {
    await s?.stop();
  });

  const post = (path: string, body: unknown) => s.request('POST', path, { token: s.adminToken, body });
  const raw = (method: string, path: string, text: string, contentType = 'application/json') =>
    s.request(method, path, { token: s.adminToken, raw: text, headers: { 'content-type': contentType } });

  it('a missing field is {"type": "missing", "loc": ["body", <field>], "msg": "Field required"}', async () => {
    const { password: _password, ...noPassword } = validUser();
    expect(expect422(await post('/users', noPassword))).toEqual([expect.objectContaining({ type: 'missing', loc: ['body', 'password'], msg: 'Field required' })]);
    const { email: _email, ...noEmail } = validUser();
    expect(expect422(await post('/users', noEmail))).toEqual([expect.objectContaining({ type: 'missing', loc: ['body', 'email'], msg: 'Field required' })]);
    expect(expect422(await post('/admin/limits/global', {}))).toEqual([expect.objectContaining({ type: 'missing', loc: ['body', 'max_concurrent_jobs'], msg: 'Field required' })]);
    expect(expect422(await post(`/admin/limits/users/${victimId}`, {}))).toEqual([expect.objectContaining({ type: 'missing', loc: ['body', 'max_concurrent_jobs'] })]);
  });

  it('a missing role is "missing" too, not an enum error', async () => {
    const { role: _role, ...noRole } = validUser();
    expect(expect422(await post('/users', noRole))).toEqual([expect.objectContaining({ type: 'missing', loc: ['body', 'role'], msg: 'Field required' })]);
    const none = expect422(await post('/users', {}));
    expect(none.map((i) => `${i.loc.join('.')}:${i.type}`).sort()).toEqual(['body.email:missing', 'body.password:missing', 'body.role:missing']);
  });

  it('a value of the wrong type names the field', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/users', { ...validUser(), is_active: 'yes' }, 'is_active'],
      ['/users', { ...validUser(), max_concurrent_jobs: 'many' }, 'max_concurrent_jobs'],
      ['/users', { ...validUser(), email: 42 }, 'email'],
      ['/users', { ...validUser(), password: ['Valid-pass-123'] }, 'password'],
      ['/admin/limits/global', { max_concurrent_jobs: '5' }, 'max_concurrent_jobs'],
      ['/admin/limits/global', { max_concurrent_jobs: 2.5 }, 'max_concurrent_jobs'],
    ];
    for (const [path, body, field] of cases) {
      const detail = expect422(await post(path, body), `${path} ${JSON.stringify(body)}`);
      expect(detail.map((i) => i.loc)).toContainEqual(['body', field]);
    }
    const patch = expect422(await s.request('PATCH', `/users/${victimId}`, { token: s.adminToken, body: { is_active: 1 } }));
    expect(patch[0]!.loc).toEqual(['body', 'is_active']);
  });

  it('a password under 8 characters is string_too_short', async () => {
    const create = expect422(await post('/users', { ...validUser(), password: 'short' }));
    expect(create).toContainEqual(expect.objectContaining({ type: 'string_too_short', loc: ['body', 'password'] }));
    const patch = expect422(await s.request('PATCH', `/users/${victimId}`, { token: s.adminToken, body: { password: '1234567' } }));
    expect(patch).toContainEqual(expect.objectContaining({ type: 'string_too_short', loc: ['body', 'password'] }));
    const long = expect422(await post('/users', { ...validUser(), password: 'x'.repeat(257) }));
    expect(long).toContainEqual(expect.objectContaining({ type: 'string_too_long', loc: ['body', 'password'] }));
  });

  it('an unknown field is extra_forbidden at ["body", <field>]', async () => {
    const usersBefore = (await s.request('GET', '/users', { token: s.adminToken })).body.length;
    const cases: [string, string, Record<string, unknown>][] = [
      ['POST', '/users', { ...validUser(), nickname: 'bob' }],
      ['PATCH', `/users/${victimId}`, { nickname: 'bob' }],
      ['PATCH', `/users/${victimId}`, { role: 'viewer', password_hash: 'x' }],
      ['POST', '/admin/limits/global', { max_concurrent_jobs: 4, nickname: 'bob' }],
      ['POST', `/admin/limits/users/${victimId}`, { max_concurrent_jobs: null, nickname: 'bob' }],
    ];
    for (const [method, path, body] of cases) {
      const extra = Object.keys(body).at(-1)!;
      const detail = expect422(await s.request(method, path, { token: s.adminToken, body }), `${method} ${path}`);
      expect(detail).toContainEqual(expect.objectContaining({ type: 'extra_forbidden', loc: ['body', extra] }));
    }
    // Nothing was created or changed by the refused bodies.
    const victim = await s.request('GET', `/users/${victimId}`, { token: s.adminToken });
    expect(victim.body.role).toBe('viewer');
    expect((await s.request('GET', '/users', { token: s.adminToken })).body).toHaveLength(usersBefore);
  });

  it('an unknown role is an enum error', async () => {
    for (const role of ['superuser', 'ADMIN', '', null]) {
      const detail = expect422(await post('/users', { ...validUser(), role }), String(role));
      expect(detail).toContainEqual(expect.objectContaining({ loc: ['body', 'role'] }));
      if (typeof role === 'string') expect(detail.find((i) => i.loc[1] === 'role')!.type).toBe('enum');
    }
    const patch = expect422(await s.request('PATCH', `/users/${victimId}`, { token: s.adminToken, body: { role: 'root' } }));
    expect(patch[0]).toMatchObject({ type: 'enum', loc: ['body', 'role'] });
  });

  it('a body that is not a JSON object is a 422', async () => {
    const malformed = expect422(await raw('POST', '/users', '{"email": "a@b.co", '));
    expect(malformed[0]!.type).toBe('json_invalid');
    expect422(await raw('POST', '/users', "{'email': 'single-quotes@example.com'}"));
    expect422(await raw('POST', '/users', JSON.stringify([validUser()])), 'array');
    expect422(await raw('POST', '/admin/limits/global', '[{"max_concurrent_jobs": 5}]'), 'array');
    expect422(await raw('PATCH', `/users/${victimId}`, '[]'), 'empty array');
    expect422(await raw('POST', '/users', '"just a string"'), 'string');
    expect422(await raw('POST', '/users', 'null'), 'null');
    expect422(await raw('POST', '/users', '42'), 'number');
    expect422(await raw('POST', '/users', ''), 'empty body');
    expect422(await raw('POST', '/users', JSON.stringify(validUser()), 'text/plain'), 'text/plain');
  });

  it('a deeply nested JSON body is a 422, not a 500', async () => {
    const depth = 50_000; // 100 KB, far under the 1 MiB body limit
    const res = await raw('POST', '/users', '['.repeat(depth) + ']'.repeat(depth));
    expect(res.status, res.text.slice(0, 200)).toBe(422);
    expect(Array.isArray(res.body.detail)).toBe(true);
    const nestedField = await raw('POST', '/users', `{"email": ${'['.repeat(depth)}${']'.repeat(depth)}, "password": "Valid-pass-123", "role": "viewer"}`);
    expect(nestedField.status, nestedField.text.slice(0, 200)).toBe(422);
  });

  it('an email with a NUL character is a 422, not a 500 or a new user', async () => {
    const res = await post('/users', { ...validUser(), email: `nul\u0000${randomSuffix()}@example.com` });
    expect(res.status, res.text.slice(0, 200)).toBe(422);
    expect(res.body.detail[0].loc).toEqual(['body', 'email']);
  });

  it('a login with a NUL character in the username is a plain 401, not a 500', async () => {
    const res = await tokenRequest(s.api, { username: 'admin\u0000@example.com', password: 'whatever-it-is' });
    expect(res.status, res.text.slice(0, 200)).toBe(401);
    expect(res.body).toEqual({ detail: 'Incorrect username or password' });
  });

  it('an unknown route under the prefix is 404 {"detail": "Not Found"}', async () => {
    const paths = ['/nope', '/users/abc/def', '', '/', '/admin', '/admin/limits/users', '/users/%E0%A4%A', '/jobs-but-not-really'];
    for (const path of paths) {
      for (const token of [s.adminToken, null]) {
        const res = await s.request('GET', path, { token });
        expect(res.status, `GET ${path}`).toBe(404);
        expect(res.body, `GET ${path}`).toEqual({ detail: 'Not Found' });
      }
    }
    const post404 = await s.request('POST', '/nope', { token: s.adminToken, body: { a: 1 } });
    expect(post404.status).toBe(404);
    expect(post404.body).toEqual({ detail: 'Not Found' });
  });

  const wrongMethods: [string, string][] = [
    ['DELETE', '/users'],
    ['PUT', '/users/00000000-0000-7000-8000-000000000000'],
    ['GET', '/auth/token'],
    ['DELETE', '/admin/limits'],
    ['GET', '/admin/limits/global'],
    ['PATCH', '/health'],
  ];

  it('a known path with the wrong method is 405 {"detail": ...}', async () => {
    for (const [method, path] of wrongMethods) {
      for (const token of [s.adminToken, null]) {
        const res = await s.request(method, path, { token });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.body).toEqual({ detail: 'Method Not Allowed' });
      }
    }
  });

  it('a 405 names the allowed methods in an Allow header (RFC 9110 §15.5.6)', async () => {
    const expected: Record<string, string[]> = {
      '/users': ['GET', 'POST'],
      '/users/00000000-0000-7000-8000-000000000000': ['GET', 'PATCH'],
      '/auth/token': ['POST'],
      '/admin/limits': ['GET'],
      '/admin/limits/global': ['POST'],
      '/health': ['GET'],
    };
    for (const [method, path] of wrongMethods) {
      const res = await s.request(method, path, { token: s.adminToken });
      const allow = (res.headers.get('allow') ?? '').split(',').map((m) => m.trim()).filter(Boolean);
      expect(allow, `${method} ${path}`).toEqual(expect.arrayContaining(expected[path]!));
    }
  });

  // Random bodies (fast-check), on SQLite only to keep the suite short.
  if (provider === 'sqlite') {
    describe('random bodies never break the API (property)', () => {
      // The server still answers after every property.
      afterEach(async () => {
        const health = await httpRequest(`${s.api}/health`);
        expect(health.status, 'health after the property').toBe(200);
        expect(health.body.status).toBe('ok');
      });

      async function send(method: string, path: string, text: string, contentType = 'application/json') {
        return httpRequest(`${s.api}${path}`, { method, headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': contentType }, body: text });
      }

      /** The invariants every answer keeps; `verdict` says what the contract makes of the body. */
      function check(res: RawResponse, verdict: Verdict, okStatuses: number[], what: string) {
        const label = `${what} -> ${res.status} ${res.text.slice(0, 160)}`;
        expect(res.status, label).toBeLessThan(500);
        expect(res.status, label).toBeGreaterThanOrEqual(200);
        if (res.status >= 400) {
          expect(res.headers['content-type'], label).toContain('application/json');
          expect(Object.keys(res.body), label).toEqual(['detail']);
        }
        if (verdict === 'invalid') expect(res.status, label).toBe(422);
        if (verdict === 'valid') expect(okStatuses, label).toContain(res.status);
        if (res.status < 300) {
          expect(verdict, label).not.toBe('invalid');
          for (const needle of ['password_hash', 'passwordHash', '$argon2']) expect(res.text, label).not.toContain(needle);
        }
      }

      const describeBody = (b: { text: string }) => JSON.stringify(b.text.length > 300 ? `${b.text.slice(0, 300)}… (${b.text.length} chars)` : b.text);

      it('POST /users', async () => {
        await fc.assert(
          fc.asyncProperty(bodyOf(nearUserCreate), async (b) => {
            const res = await send('POST', '/users', b.text);
            check(res, b.json ? userCreateVerdict(b.value) : 'invalid', [201, 409], `POST /users ${describeBody(b)}`);
            if (res.status === 201) expect(Object.keys(res.body).sort()).toEqual(USER_READ_KEYS);
          }),
          { numRuns: 150 },
        );
      });

      it('PATCH /users/{id}', async () => {
        await fc.assert(
          fc.asyncProperty(bodyOf(nearUserUpdate), async (b) => {
            const res = await send('PATCH', `/users/${victimId}`, b.text);
            check(res, b.json ? userUpdateVerdict(b.value) : 'invalid', [200], `PATCH /users ${describeBody(b)}`);
            if (res.status === 200) expect(res.body.id).toBe(victimId);
          }),
          { numRuns: 150 },
        );
      });

      it('POST /admin/limits/global', async () => {
        await fc.assert(
          fc.asyncProperty(bodyOf(nearLimit), async (b) => {
            const res = await send('POST', '/admin/limits/global', b.text);
            check(res, b.json ? limitVerdict(false)(b.value) : 'invalid', [200], `POST /admin/limits/global ${describeBody(b)}`);
          }),
          { numRuns: 150 },
        );
      });

      it('POST /admin/limits/users/{id}', async () => {
        await fc.assert(
          fc.asyncProperty(bodyOf(nearLimit), async (b) => {
            const res = await send('POST', `/admin/limits/users/${victimId}`, b.text);
            check(res, b.json ? limitVerdict(true)(b.value) : 'invalid', [200], `POST /admin/limits/users ${describeBody(b)}`);
          }),
          { numRuns: 150 },
        );
      });

      it('POST /auth/token with random form strings', async () => {
        await fc.assert(
          fc.asyncProperty(formBody, async (text) => {
            // Its own client address: failed logins here must not lock 127.0.0.1 out.
            const res = await tokenRequest(s.api, text, '127.0.0.9');
            check(res, 'unknown', [], `POST /auth/token ${JSON.stringify(text.slice(0, 300))}`);
            expect([401, 422, 429], `POST /auth/token ${JSON.stringify(text.slice(0, 300))} -> ${res.status}`).toContain(res.status);
          }),
          { numRuns: 150 },
        );
      });
    });
  }
});

describe.each(PROVIDERS)('body size limit (MAX_BODY_BYTES=2048) on %s', (provider) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(provider, { MAX_BODY_BYTES: '2048' });
  });
  afterAll(async () => {
    await s?.stop();
  });

  const bigUser = () => JSON.stringify({ email: `big-${randomSuffix()}@example.com`, password: 'Valid-pass-123', role: 'viewer', pad: 'x'.repeat(3000) });
  const expect413 = (res: RawResponse, what: string) => {
    expect(res.status, `${what}: ${res.text.slice(0, 200)}`).toBe(413);
    expect(res.body, what).toEqual({ detail: expect.any(String) });
  };

  it('answers 413 {"detail"} on REST, with or without a Content-Length, and keeps serving', async () => {
    const headers = { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' };
    expect413(await httpRequest(`${s.api}/users`, { method: 'POST', headers, body: bigUser() }), 'POST /users');
    expect413(await httpRequest(`${s.api}/users`, { method: 'POST', headers, body: bigUser(), chunked: true }), 'POST /users, chunked');
    expect413(await tokenRequest(s.api, { username: 'admin@example.com', password: 'x'.repeat(3000) }), 'POST /auth/token');
    expect((await s.request('GET', '/health')).status).toBe(200);
    const users = await s.request('GET', '/users', { token: s.adminToken });
    expect(users.body.map((u: { email: string }) => u.email).filter((e: string) => e.startsWith('big-'))).toEqual([]);
  });

  it('answers 413 {"detail"} on POST /graphql', async () => {
    const query = `{ health { status } }${' '.repeat(3000)}`;
    const headers = { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' };
    expect413(await httpRequest(`${s.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query }) }), 'POST /graphql');
    expect413(await httpRequest(`${s.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query }), chunked: true }), 'POST /graphql, chunked');
    expect((await s.graphql('{ health { status } }')).data.health.status).toBe('ok');
  });

  it('still accepts a body just under the limit', async () => {
    const query = `{ health { status } }${' '.repeat(1800)}`;
    const res = await s.graphql(query);
    expect(res.data?.health?.status).toBe('ok');
    const global = await s.request('POST', '/admin/limits/global', { token: s.adminToken, raw: `{"max_concurrent_jobs": 5${' '.repeat(1900)}}`, headers: { 'content-type': 'application/json' } });
    expect(global.status).toBe(200);
  });
});


// One rule, two transports: a REST body documents and enforces exactly the
// service's input rules (the OpenAPI a curl user reads is what GraphQL applies).
describe('REST bodies are the services\' inputs under snake_case names', () => {
  const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const rules = (schema: z.ZodObject) => {
    const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, { description?: string }>; required?: string[] };
    return { required: (json.required ?? []).map(snake).sort(), properties: Object.fromEntries(Object.entries(json.properties).map(([k, v]) => [snake(k), { ...v, description: undefined }])) };
  };
  it.each([
    ['UserCreate', S.UserCreate, createUserInput],
    ['UserUpdate', S.UserUpdate, updateUserInput],
    ['MeUpdate', S.MeUpdate, updateMeInput],
    ['ForceComplete', S.ForceComplete, forceCompleteInput],
    ['BatchForceComplete', S.BatchForceComplete, forceCompleteBatchInput],
  ] as const)('%s', (_name, rest, service) => {
    expect(rules(rest)).toEqual(rules(service));
  });
  it('a batch holds at most MAX_BATCH_JOBS jobs on both, the same job rules aside from the names', () => {
    const restJobs = z.toJSONSchema(S.BatchCreate.shape.jobs, { io: 'input', unrepresentable: 'any' }) as { maxItems: number; minItems: number };
    const serviceJobs = z.toJSONSchema(createBatchInput.shape.jobs, { io: 'input', unrepresentable: 'any' }) as { maxItems: number; minItems: number };
    expect([restJobs.minItems, restJobs.maxItems]).toEqual([1, MAX_BATCH_JOBS]);
    expect([serviceJobs.minItems, serviceJobs.maxItems]).toEqual([1, MAX_BATCH_JOBS]);
    expect(Object.keys(S.JobCreate.shape).sort()).toEqual(Object.keys(submitJobInput.shape).map(snake).sort());
  });
});
