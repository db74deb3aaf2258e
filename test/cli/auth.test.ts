// login, whoami, logout and every way a client can be refused, with the
// real executable against a real server.
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, expiredToken, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { cli, configDir, start } from './cli.js';

let s: TestServer;
let config: ReturnType<typeof configDir>;
let env: Record<string, string>;

beforeAll(async () => {
  s = await startServer('sqlite');
  config = configDir();
  env = { JOBRUNNER_CONFIG: config.path };
});
afterAll(async () => {
  config?.cleanup();
  await s?.stop();
});

const stored = () => JSON.parse(readFileSync(config.path, 'utf8')) as { server: string; token: string; token_kind: string; token_id: string; email: string };

describe('login, whoami, logout', () => {
  it('login reads the password from stdin, keeps an API token in a 0600 file, and ends the password session', async () => {
    const operator = await s.user('operator');
    const r = await cli(['login', '--server', s.url, '--email', operator.email], { env, input: `${operator.password}\n` });
    expect(r.stderr).toContain(`logged in to ${s.url} as ${operator.email} (operator)`);
    expect(r.code).toBe(0);
    expect(statSync(config.path).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(config.path)).mode & 0o777).toBe(0o700);
    const login = stored();
    expect(login).toMatchObject({ server: s.url, token_kind: 'api', email: operator.email });
    expect(login.token).toMatch(/^jrt_/);

    // The token works over REST, carries the operator's scopes, and is listed as theirs.
    const me = await s.request('GET', '/users/me', { token: login.token });
    expect(me.body).toMatchObject({ email: operator.email, role: 'operator' });
    const tokens = await s.request('GET', '/auth/tokens', { token: operator.token });
    expect(tokens.body).toEqual([expect.objectContaining({ id: login.token_id, scopes: ['jobs:write', 'batches:write'] })]);

    // whoami agrees with GET /users/me.
    const who = await cli(['whoami'], { env });
    expect(who.code).toBe(0);
    expect(who.stdout).toMatch(new RegExp(`email:\\s+${operator.email}`));
    expect(who.stdout).toMatch(/role:\s+operator/);
    expect(who.stdout).toContain(`API token ${login.token_id}`);
    const whoJson = await cli(['whoami', '--json'], { env });
    expect(JSON.parse(whoJson.stdout)).toEqual(me.body);

    // logout with the password (JOBRUNNER_PASSWORD): the API token is revoked on the server, the file removed.
    const out = await cli(['logout'], { env: { ...env, JOBRUNNER_PASSWORD: operator.password } });
    expect(out.code).toBe(0);
    expect(out.stderr).toContain('API token revoked');
    expect(() => statSync(config.path)).toThrow();
    expect((await s.request('GET', '/users/me', { token: login.token })).status).toBe(401);

    const after = await cli(['whoami'], { env });
    expect(after.code).toBe(3);
    // Forgotten: the default server is assumed again.
    expect(after.stderr).toContain("not logged in to http://localhost:8000: run `jobrunner login`");
  });

  it('logging in again as the same user revokes the token it replaces', async () => {
    const operator = await s.user('operator');
    const login1 = await cli(['login', '--server', s.url, '--email', operator.email], { env, input: operator.password });
    expect(login1.code).toBe(0);
    const first = stored().token;
    expect((await cli(['login'], { env, input: operator.password })).code).toBe(0); // the server and email of the last login
    expect(stored().token).not.toBe(first);
    expect((await s.request('GET', '/users/me', { token: first })).status).toBe(401);
    expect((await s.request('GET', '/users/me', { token: stored().token })).status).toBe(200);
    await cli(['logout'], { env: { ...env, JOBRUNNER_PASSWORD: operator.password } });
  });

  it('logout without a password forgets the API token and says it stays valid and how to revoke it', async () => {
    const viewer = await s.user('viewer');
    expect((await cli(['login', '--server', s.url, '--email', viewer.email], { env: { ...env, JOBRUNNER_PASSWORD: viewer.password } })).code).toBe(0);
    const login = stored();
    const out = await cli(['logout'], { env });
    expect(out.code).toBe(0);
    expect(out.stderr).toContain(`the API token ${login.token_id} stays valid until`);
    expect(out.stderr).toContain(`DELETE /auth/tokens/${login.token_id}`);
    expect(() => statSync(config.path)).toThrow();
    expect((await s.request('GET', '/users/me', { token: login.token })).status).toBe(200);
  });

  it('login --session keeps the session token; logout ends that session on the server', async () => {
    const r = await cli(['login', '--session', '--server', s.url, '--email', ADMIN_EMAIL], { env, input: ADMIN_PASSWORD });
    expect(r.code).toBe(0);
    const login = stored();
    expect(login.token_kind).toBe('session');
    expect((await s.request('GET', '/users/me', { token: login.token })).status).toBe(200);
    const out = await cli(['logout'], { env });
    expect(out).toMatchObject({ code: 0 });
    expect(out.stderr).toContain('session ended');
    expect((await s.request('GET', '/users/me', { token: login.token })).status).toBe(401);
  });
});

describe('on a terminal', () => {
  it('login prompts for the password and does not echo it', async () => {
    const run = start(['login', '--server', s.url, '--email', ADMIN_EMAIL], { env, tty: true });
    await waitFor(() => run.stdout().includes(`password for ${ADMIN_EMAIL} on ${s.url}: `));
    run.type(`${ADMIN_PASSWORD}\r`);
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`logged in to ${s.url} as ${ADMIN_EMAIL} (admin)`);
    expect(r.stdout).not.toContain(ADMIN_PASSWORD);
    expect(stored().token_kind).toBe('api');
    expect((await cli(['logout'], { env: { ...env, JOBRUNNER_PASSWORD: ADMIN_PASSWORD } })).code).toBe(0);
  });
});

describe('refusals: message and exit status', () => {
  it('a wrong password: exit 3, nothing stored', async () => {
    const r = await cli(['login', '--server', s.url, '--email', ADMIN_EMAIL], { env, input: 'wrong-password\n' });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`error: login refused for ${ADMIN_EMAIL}: wrong email or password`);
    expect(() => statSync(config.path)).toThrow();
  });

  it('no password at all: exit 2', async () => {
    const r = await cli(['login', '--server', s.url, '--email', ADMIN_EMAIL], { env, input: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no password given');
  });

  it('no token: exit 3, says to log in', async () => {
    const r = await cli(['ls', '--server', s.url], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: not logged in: run `jobrunner login`');
  });

  it('an expired token: exit 3, says it expired and to log in again', async () => {
    const expired = await expiredToken(s, s.adminToken);
    const r = await cli(['ls'], { env: { ...env, JOBRUNNER_SERVER: s.url, JOBRUNNER_TOKEN: expired } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: not logged in or session expired (token expired): run `jobrunner login`');
  });

  it('a garbage token: exit 3', async () => {
    const r = await cli(['stats', '--json'], { env: { ...env, JOBRUNNER_SERVER: s.url, JOBRUNNER_TOKEN: 'not-a-token' } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: not logged in or session expired (malformed token): run `jobrunner login`');
    expect(r.stdout).toBe('');
  });

  it('a revoked API token stored in the config file: exit 3', async () => {
    const operator = await s.user('operator');
    await cli(['login', '--server', s.url, '--email', operator.email], { env, input: operator.password });
    await s.request('DELETE', `/auth/tokens/${stored().token_id}`, { token: operator.token });
    const r = await cli(['ls'], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('(token revoked): run `jobrunner login`');
  });

  it('not allowed (an operator at an admin command): exit 3 with the server\'s reason', async () => {
    const operator = await s.user('operator');
    const r = await cli(['users', 'ls'], { env: { ...env, JOBRUNNER_SERVER: s.url, JOBRUNNER_TOKEN: operator.token } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: not allowed: Operators may not create, read and change users');
  });

  it('an unreachable server: exit 5, names it and the options that choose it', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    for (const args of [['ls', '--server', url], ['login', '--server', url, '--email', ADMIN_EMAIL]]) {
      const r = await cli(args, { env, input: 'x\n' });
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(`error: cannot reach ${url} (ECONNREFUSED): is it running? (--server / JOBRUNNER_SERVER)`);
    }
  });

  it('a server URL that is not one: usage error', async () => {
    const r = await cli(['ls', '--server', 'localhost:8000'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('use an http:// or https:// URL');
  });
});
