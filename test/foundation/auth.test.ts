// Login (OAuth2 password form), its failure modes and rate limit, and the
// 401 every protected route gives to anything but a live user's valid token.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { SignJWT, UnsecuredJWT, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../src/rest/routes.js';
import { PROVIDERS } from '../helpers/db.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startServer, type TestServer } from '../helpers/server.js';
import { concretePath, httpRequest, median, randomSuffix, tokenRequest } from './support.js';

const ISSUER = 'jobrunner';
const AUDIENCE = 'jobrunner-api';
const BAD_LOGIN = { detail: 'Incorrect username or password' };
const NOT_AUTHENTICATED = { detail: 'Not authenticated' };

const protectedRoutes = routes.filter((r) => r.auth);

interface TokenClaims {
  sub: string;
  iss?: string;
  aud?: string;
  /** seconds from now; negative = in the past */
  expIn?: number | null;
  alg?: string;
  /** The session the token names (a JWT is good only with a live session). */
  sid?: string;
}

async function sign(secret: string, c: TokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(c.sid ? { sid: c.sid } : {}).setProtectedHeader({ alg: c.alg ?? 'HS256', typ: 'JWT' }).setSubject(c.sub).setIssuedAt(now - 10);
  if (c.iss !== undefined) jwt.setIssuer(c.iss);
  if (c.aud !== undefined) jwt.setAudience(c.aud);
  if (c.expIn !== null) jwt.setExpirationTime(now + (c.expIn ?? 600));
  return jwt.sign(new TextEncoder().encode(secret));
}

describe.each(PROVIDERS)('authentication on %s', (provider) => {
  let s: TestServer;
  let adminId: string;
  let secret: string;
  let op: { id: string; email: string; password: string };

  /** A fresh user created by the admin, with its password (no token fetched). */
  async function createUser(role: 'admin' | 'operator' | 'viewer', extra: Record<string, unknown> = {}) {
    const email = `${role}-${randomSuffix()}@example.com`;
    const password = `Pw-${randomSuffix()}-${randomSuffix()}`;
    const res = await s.request('POST', '/users', { token: s.adminToken, body: { email, password, role, ...extra } });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.id as string, email, password };
  }

  beforeAll(async () => {
    s = await startServer(provider);
    secret = s.env.JWT_SECRET!;
    adminId = (await s.graphql('{ me { id } }')).data.me.id;
    op = await createUser('operator');
  });
  afterAll(async () => {
    await s?.stop();
  });

  describe('POST /auth/token', () => {
    it('exchanges form credentials for a working bearer token', async () => {
      const res = await tokenRequest(s.api, { username: ADMIN_EMAIL, password: ADMIN_PASSWORD });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toContain('application/json');
      expect(Object.keys(res.body).sort()).toEqual(['access_token', 'expires_in', 'token_type']);
      expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'bearer', expires_in: expect.any(Number) });
      expect(Number.isInteger(res.body.expires_in) && res.body.expires_in > 0).toBe(true);

      const claims = decodeJwt(res.body.access_token);
      expect(claims).toMatchObject({ sid: expect.any(String), sub: adminId, iss: ISSUER, aud: AUDIENCE });
      expect(claims.exp! - claims.iat!).toBe(res.body.expires_in);

      const me = await s.graphql('{ me { id email role } }', {}, res.body.access_token);
      expect(me.data.me).toEqual({ id: adminId, email: ADMIN_EMAIL, role: 'ADMIN' });
      const users = await s.request('GET', '/users', { token: res.body.access_token });
      expect(users.status).toBe(200);
    });

    it('matches the email case-insensitively, and accepts grant_type=password with a scope as OAuth2 clients send them', async () => {
      const res = await tokenRequest(s.api, { grant_type: 'password', username: op.email.toUpperCase(), password: op.password, scope: 'read write' });
      expect(res.status).toBe(200);
      expect(res.body.token_type).toBe('bearer');
      expect(decodeJwt(res.body.access_token).sub).toBe(op.id);
    });

    it('answers a wrong password, an unknown email and an inactive user with the same 401', async () => {
      expect((await s.request('PATCH', `/users/${op.id}`, { token: s.adminToken, body: { is_active: false } })).status).toBe(200);
      try {
        const attempts = [
          { username: ADMIN_EMAIL, password: 'not-the-password' },
          { username: `nobody-${randomSuffix()}@example.com`, password: ADMIN_PASSWORD },
          { username: op.email, password: op.password }, // right password, inactive user
        ];
        for (const a of attempts) {
          const res = await tokenRequest(s.api, a);
          expect(res.status, a.username).toBe(401);
          expect(res.body).toEqual(BAD_LOGIN);
          expect(res.headers['www-authenticate']).toBe('Bearer');
        }
      } finally {
        await s.request('PATCH', `/users/${op.id}`, { token: s.adminToken, body: { is_active: true } });
      }
    });

    it('answers missing username or password with a Pydantic-shaped 422', async () => {
      const noUser = await tokenRequest(s.api, { password: 'whatever-123' });
      expect(noUser.status).toBe(422);
      expect(noUser.body.detail[0]).toMatchObject({ type: 'missing', loc: ['body', 'username'], msg: 'Field required' });

      const noPassword = await tokenRequest(s.api, { username: ADMIN_EMAIL });
      expect(noPassword.status).toBe(422);
      expect(noPassword.body.detail[0]).toMatchObject({ type: 'missing', loc: ['body', 'password'], msg: 'Field required' });

      const empty = await tokenRequest(s.api, '');
      expect(empty.status).toBe(422);
      const locs = (empty.body.detail as { loc: string[] }[]).map((d) => d.loc.join('.')).sort();
      expect(locs).toEqual(['body.password', 'body.username']);
    });

    it('refuses a grant_type other than "password" with 422', async () => {
      for (const grant_type of ['client_credentials', 'refresh_token', 'PASSWORD']) {
        const res = await tokenRequest(s.api, { grant_type, username: ADMIN_EMAIL, password: ADMIN_PASSWORD });
        expect(res.status, grant_type).toBe(422);
        expect(res.body.detail).toEqual(expect.arrayContaining([expect.objectContaining({ loc: ['body', 'grant_type'] })]));
      }
    });

    it('answers a JSON body with 422, not 500', async () => {
      const res = await httpRequest(`${s.api}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
      });
      expect(res.status).toBe(422);
      expect(Array.isArray(res.body.detail)).toBe(true);
    });

    // Login throttling and the dummy-hash check live in the process, not in the
    // database, and every attempt costs an argon2 verification (~0.3 s on two
    // cores): this scenario runs on one provider only, to keep the suite short.
    if (provider === 'sqlite') it('rejects an unknown email as slowly as a wrong password; repeated failures slow down that account from that address only (429 + Retry-After), never its owner elsewhere nor other accounts', async () => {
      // One scenario covers both: the wrong-password samples are also the first
      // failures of their (account, address) pair. Each phase uses a client
      // address of its own, and 127.0.0.1 must stay usable for the other tests.
      const victim = await createUser('operator');
      const unknown: number[] = [];
      const wrong: number[] = [];
      for (let i = 0; i < 5; i++) {
        for (const [list, username] of [[unknown, `ghost-${i}-${randomSuffix()}@example.com`], [wrong, victim.email]] as const) {
          const t0 = performance.now();
          const res = await tokenRequest(s.api, { username, password: `wrong-password-${i}` }, '127.0.0.2');
          list.push(performance.now() - t0);
          expect(res.status).toBe(401);
          expect(res.body).toEqual(BAD_LOGIN);
        }
      }
      const ratio = median(unknown) / median(wrong);
      const timing = `median unknown email ${median(unknown).toFixed(1)} ms vs wrong password ${median(wrong).toFixed(1)} ms`;
      expect(ratio, timing).toBeGreaterThan(1 / 3);
      expect(ratio, timing).toBeLessThan(3);

      // Someone who knows the victim's email guesses from another address.
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await tokenRequest(s.api, { username: victim.email, password: `still-wrong-${i}` }, '127.0.0.3');
        statuses.push(res.status);
        if (res.status === 429) break;
      }
      expect(statuses[0]).toBe(401);
      expect(statuses.at(-1)).toBe(429);

      const slowed = await tokenRequest(s.api, { username: victim.email, password: 'yet-another-wrong' }, '127.0.0.3');
      expect(slowed.status).toBe(429);
      const retryAfter = Number(slowed.headers['retry-after']);
      expect(Number.isInteger(retryAfter) && retryAfter > 0, `Retry-After: ${slowed.headers['retry-after']}`).toBe(true);
      // The body says when to retry, too.
      expect(slowed.body).toEqual({ detail: `Too many failed logins; try again in ${retryAfter} s` });
      const viaGraphql = await httpRequest(`${s.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }', variables: { e: victim.email, p: victim.password } }),
        localAddress: '127.0.0.3',
      });
      expect((viaGraphql.body as any).errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');

      // Those failures do not lock the owner out: the right password (in any case) from their own address works ...
      const owner = await tokenRequest(s.api, { username: victim.email.toUpperCase(), password: victim.password }, '127.0.0.4');
      expect(owner.status, owner.text).toBe(200);
      // ... and nobody else is blocked at the guesser's address (one office, one proxy, many users).
      const colleague = await tokenRequest(s.api, { username: op.email, password: op.password }, '127.0.0.3');
      expect(colleague.status, colleague.text).toBe(200);
    });
  });

  describe('GraphQL', () => {
    it('login issues a token that works on REST and GraphQL', async () => {
      const res = await s.graphql(
        'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken tokenType expiresIn } }',
        { e: ADMIN_EMAIL.toUpperCase(), p: ADMIN_PASSWORD },
        null,
      );
      expect(res.errors).toBeUndefined();
      expect(res.data.login).toEqual({ accessToken: expect.any(String), tokenType: 'bearer', expiresIn: expect.any(Number) });
      const me = await s.graphql('{ me { id } }', {}, res.data.login.accessToken);
      expect(me.data.me.id).toBe(adminId);
      expect((await s.request('GET', '/admin/limits', { token: res.data.login.accessToken })).status).toBe(200);
    });

    it('login with a wrong password is UNAUTHENTICATED', async () => {
      const res = await s.graphql('mutation { login(email: "admin@example.com", password: "nope-nope-nope") { accessToken } }', {}, null);
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      expect(res.data?.login ?? null).toBeNull();
    });

    it('me with no token or a bad token is UNAUTHENTICATED', async () => {
      const bad = [null, 'garbage', await sign('another-secret-that-is-long-enough-000', { sub: adminId, iss: ISSUER, aud: AUDIENCE })];
      for (const token of bad) {
        const res = await s.graphql('{ me { id email } }', {}, token);
        expect(res.errors?.[0]?.extensions?.code, String(token)).toBe('UNAUTHENTICATED');
        expect(res.data?.me ?? null).toBeNull();
      }
    });
  });

  describe('protected routes', () => {
    it('every protected REST route answers 401 Not authenticated to anything but a valid, live token, saying why (RFC 6750)', async () => {
      // The last test of the file: `op` may be deactivated now.
      const deactivatedToken = await s.token(op.email, op.password);
      const off = await s.request('PATCH', `/users/${op.id}`, { token: s.adminToken, body: { is_active: false } });
      expect(off.status).toBe(200);

      // Forged tokens name the admin's live session, so each differs from a good token only in what is forged.
      const sid = decodeJwt(s.adminToken).sid as string;
      const now = Math.floor(Date.now() / 1000);
      const expired = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(adminId).setIssuer(ISSUER).setAudience(AUDIENCE)
        .setIssuedAt(now - 7200).setExpirationTime(now - 3600)
        .sign(new TextEncoder().encode(secret));
      // Each variant with the challenge it must get (RFC 6750): bare when no bearer token was
      // given, else invalid_token and why.
      const challenge = (why: string) => `Bearer error="invalid_token", error_description="${why}"`;
      const variants: Record<string, [Record<string, string> | undefined, string]> = {
        'no Authorization header': [undefined, 'Bearer'],
        'a garbage token': [{ authorization: 'Bearer garbage.garbage.garbage' }, challenge('malformed token')],
        'a token signed with another secret': [{ authorization: `Bearer ${await sign('another-secret-that-is-long-enough-000', { sid, sub: adminId, iss: ISSUER, aud: AUDIENCE })}` }, challenge('invalid token')],
        'an expired token': [{ authorization: `Bearer ${expired}` }, challenge('token expired')],
        'an alg:none token': [{ authorization: `Bearer ${new UnsecuredJWT({}).setSubject(adminId).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('10m').encode()}` }, challenge('invalid token')],
        'a token with the wrong issuer': [{ authorization: `Bearer ${await sign(secret, { sid, sub: adminId, iss: 'someone-else', aud: AUDIENCE })}` }, challenge('invalid token')],
        'a token with the wrong audience': [{ authorization: `Bearer ${await sign(secret, { sid, sub: adminId, iss: ISSUER, aud: 'another-api' })}` }, challenge('invalid token')],
        'a token without exp': [{ authorization: `Bearer ${await sign(secret, { sid, sub: adminId, iss: ISSUER, aud: AUDIENCE, expIn: null })}` }, challenge('invalid token')],
        'a token signed with HS512': [{ authorization: `Bearer ${await sign(secret, { sid, sub: adminId, iss: ISSUER, aud: AUDIENCE, alg: 'HS512' })}` }, challenge('invalid token')],
        'a token for a user that does not exist': [{ authorization: `Bearer ${await sign(secret, { sid, sub: randomUUID(), iss: ISSUER, aud: AUDIENCE })}` }, challenge('invalid token')],
        'a token of a deactivated user': [{ authorization: `Bearer ${deactivatedToken}` }, challenge('token revoked')],
        'Basic credentials': [{ authorization: `Basic ${Buffer.from(`${ADMIN_EMAIL}:${ADMIN_PASSWORD}`).toString('base64')}` }, 'Bearer'],
        'an empty Bearer': [{ authorization: 'Bearer ' }, 'Bearer'],
      };

      // Control: a token we sign the same way, with correct claims, is accepted,
      // so each variant above differs from a good token only in what it names.
      const control = await sign(secret, { sid, sub: adminId, iss: ISSUER, aud: AUDIENCE });
      expect((await s.request('GET', '/users', { token: control })).status).toBe(200);

      expect(protectedRoutes.length).toBeGreaterThanOrEqual(7);
      const failures: string[] = [];
      for (const [label, [headers, expected]] of Object.entries(variants)) {
        for (const r of protectedRoutes) {
          const path = concretePath(r);
          const withBody = r.body !== undefined;
          const res = await httpRequest(`${s.api}${path}`, {
            method: r.method,
            headers: { ...headers, ...(withBody && { 'content-type': 'application/json' }) },
            body: withBody ? '{}' : undefined,
          });
          const ok = res.status === 401 && JSON.stringify(res.body) === JSON.stringify(NOT_AUTHENTICATED) && res.headers['www-authenticate'] === expected;
          if (!ok) failures.push(`${r.method} ${r.path} with ${label}: ${res.status} ${res.text.slice(0, 120)} www-authenticate=${res.headers['www-authenticate']}`);
        }
      }
      expect(failures).toEqual([]);
    });
  });
});
