// Small helpers shared by the identity-and-access suites (issue #12): API
// tokens, the RFC 6750 challenge, gate jobs, env masking. Not a test file.
import { writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { TestServer } from '../helpers/server.js';

export type Scope = 'jobs:read' | 'jobs:write' | 'batches:read' | 'batches:write' | 'admin';

export const CREATED_TOKEN_KEYS = ['created_at', 'expires_at', 'id', 'name', 'scopes', 'token'];
export const LISTED_TOKEN_KEYS = ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'scopes'];
export const ME_KEYS = ['created_at', 'effective_max_concurrent_jobs', 'email', 'id', 'is_active', 'max_concurrent_jobs', 'pending_jobs', 'role', 'running_jobs'];
export const AUDIT_KEYS = ['action', 'actor_id', 'at', 'client_address', 'id', 'outcome', 'target_id', 'target_type'];

export const challenge = (why: string) => `Bearer error="invalid_token", error_description="${why}"`;

export interface CreatedToken {
  id: string;
  name: string;
  scopes: Scope[];
  token: string;
  expires_at: string;
  created_at: string;
}

/** POST /auth/tokens with a password session; throws unless 201. */
export async function createApiToken(s: Pick<TestServer, 'request'>, session: string, scopes: Scope[], extra: Record<string, unknown> = {}): Promise<CreatedToken> {
  const res = await s.request('POST', '/auth/tokens', { token: session, body: { name: `t-${Math.random().toString(36).slice(2, 8)}`, scopes, ...extra } });
  if (res.status !== 201) throw new Error(`create API token ${JSON.stringify(scopes)}: ${res.status} ${res.text}`);
  return res.body as CreatedToken;
}

/** A GraphQL error's extensions.code list. */
export const codes = (r: { errors?: any[] }) => (r.errors ?? []).map((e) => e.extensions?.code);

/** A job command that waits until `gate` exists (see jobGate). */
export const waitForGate = (gate: string, then = 'true') => ['sh', '-c', `while [ ! -e '${gate}' ]; do sleep 0.05; done; ${then}`];
export const openGate = (gate: string) => writeFileSync(gate, 'go');

/** `env` with every value replaced by "***" (what a non-owner, non-admin sees). */
export const masked = (env: Record<string, string>) => Object.fromEntries(Object.keys(env).map((k) => [k, '***']));

/** Asserts `env` is masked: the same keys as `real`, every value "***". */
export function expectMasked(env: unknown, real: Record<string, string>, what: string) {
  expect(env, what).toEqual(masked(real));
}

/** The entries of a 422 body's detail. */
export function detail422(res: { status: number; body: any; text: string }, what = ''): { type: string; loc: (string | number)[]; msg: string }[] {
  expect(res.status, `${what}: ${res.text}`).toBe(422);
  expect(Array.isArray(res.body?.detail), `${what}: ${res.text}`).toBe(true);
  return res.body.detail;
}
