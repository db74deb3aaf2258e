// A real listening server on an ephemeral port, in-process, on a fresh
// database; plus the few calls every suite needs (tokens, users).
import { mkdirSync } from 'node:fs';
import { SignJWT, decodeJwt } from 'jose';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, type Provider, type TestDatabase } from './db.js';

export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'AdminPass123!';

export interface TestServer {
  url: string;
  api: string;
  app: App;
  db: TestDatabase;
  env: Record<string, string>;
  adminToken: string;
  /** Calls the REST API; JSON bodies are encoded, responses parsed when JSON. */
  request(method: string, path: string, opts?: { token?: string | null; body?: unknown; headers?: Record<string, string>; raw?: string }): Promise<{ status: number; body: any; headers: Headers; text: string }>;
  token(email: string, password: string): Promise<string>;
  /** Creates a user through the API and returns it with a token. */
  user(role: 'admin' | 'operator' | 'viewer', extra?: Record<string, unknown>): Promise<{ id: string; email: string; password: string; token: string }>;
  graphql(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<{ data?: any; errors?: any[] }>;
  stop(): Promise<void>;
}

let counter = 0;

/** Logs in through the API's token route (form body) and returns the access token. */
export function tokenClient(api: string): (email: string, password: string) => Promise<string> {
  return async (email, password) => {
    const res = await fetch(`${api}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: email, password }).toString(),
    });
    if (res.status !== 200) throw new Error(`token for ${email}: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { access_token: string }).access_token;
  };
}

/** Calls a REST API under `api`; JSON bodies are encoded, JSON responses parsed. */
export function restClient(api: string): TestServer['request'] {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${api}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('application/json') && text) parsed = JSON.parse(text);
    return { status: res.status, body: parsed, headers: res.headers, text };
  };
}

/** A test server's environment on `db` (its workspace directory made), `env` on top. */
export function testServerEnv(db: TestDatabase, env: Record<string, string> = {}): Record<string, string> {
  mkdirSync(join(db.dataDir, 'workspace'), { recursive: true });
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: db.dataDir,
    DATABASE_URL: db.url,
    JWT_SECRET: 'test-secret-that-is-long-enough-0123456789',
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    LOG_LEVEL: 'error',
    KILL_GRACE_SECONDS: '1',
    ...env,
  };
}

export async function startServer(provider: Provider, env: Record<string, string> = {}): Promise<TestServer> {
  const db = await createTestDatabase(provider);
  const fullEnv = testServerEnv(db, env);
  const config = loadConfig(fullEnv);
  const app = await buildApp(config, { log: createLogger(config.logLevel) });
  const url = await app.start();
  const api = `${url}${config.apiPrefix}`;

  const request = restClient(api);

  const token = tokenClient(api);

  const adminToken = await token(ADMIN_EMAIL, ADMIN_PASSWORD);

  return {
    url,
    api,
    app,
    db,
    env: fullEnv,
    adminToken,
    request,
    token,
    async user(role, extra = {}) {
      const email = `${role}${++counter}-${Math.random().toString(36).slice(2, 8)}@example.com`;
      const password = 'Passw0rd!' + counter;
      const res = await request('POST', '/users', { token: adminToken, body: { email, password, role, ...extra } });
      if (res.status !== 201) throw new Error(`create user: ${res.status} ${res.text}`);
      return { id: res.body.id, email, password, token: await token(email, password) };
    },
    async graphql(query, variables, tok = adminToken) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as { data?: any; errors?: any[] };
    },
    async stop() {
      // No grace: tests end with their jobs, and leftovers are killed.
      await app.stop(0);
      await db.drop();
    },
  };
}

/** Polls until `fn` returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 20_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`waitFor: condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** `token` (same user, same live session) as it would be had it expired a minute ago: signed with the test server's secret. */
export async function expiredToken(s: Pick<TestServer, 'env'>, token: string): Promise<string> {
  const { sub, sid } = decodeJwt(token);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub!)
    .setIssuer('jobrunner')
    .setAudience('jobrunner-api')
    .setIssuedAt(now - 120)
    .setExpirationTime(now - 60)
    .sign(new TextEncoder().encode(s.env.JWT_SECRET));
}
