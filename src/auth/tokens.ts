// JWTs: HS256 pinned on both sign and verify, with iss/aud/exp checked. The
// token carries the subject and its session (`sid`); role, activity and
// whether the session was revoked come from the database.
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, jwtVerify } from 'jose';
import { ConfigError } from '../config.js';

const ALG = 'HS256';
export const ISSUER = 'jobrunner';
export const AUDIENCE = 'jobrunner-api';

/** Why a bearer token was refused, as RFC 6750's error_description says it. */
export type TokenProblem = 'token expired' | 'malformed token' | 'invalid token' | 'token revoked';

export interface Claims {
  userId: string;
  sessionId: string;
  expiresAt: number;
}

export interface TokenIssuer {
  readonly ttlSeconds: number;
  sign(userId: string, sessionId: string): Promise<{ token: string; expiresIn: number }>;
  /** The claims, or what is wrong with the token (expired, not a JWT, or not one of ours). */
  verify(token: string): Promise<Claims | { problem: TokenProblem }>;
}

/** jose's error codes, read as RFC 6750 descriptions: anything else we did not sign as it stands. */
function problemOf(err: unknown): TokenProblem {
  const code = (err as { code?: string }).code;
  if (code === 'ERR_JWT_EXPIRED') return 'token expired';
  if (code === 'ERR_JWS_INVALID' || code === 'ERR_JWT_INVALID') return 'malformed token';
  return 'invalid token';
}

/** The shortest secret accepted, in bytes (HS256 wants a key as long as its hash). */
export const MIN_SECRET_BYTES = 32;

/** JWT_SECRET when set, else a secret generated once and kept in the data directory. */
export function resolveSecret(configured: string | null, dataDir: string): Uint8Array {
  if (configured) return new TextEncoder().encode(configured);
  const file = join(dataDir, 'jwt-secret');
  const stored = readStoredSecret(file);
  if (stored) return stored;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // Written whole under a private name, then linked into place: a server
  // starting beside us sees no file or the whole secret, never a partial one.
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(tmp, secret, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, file);
    return new TextEncoder().encode(secret);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process wrote it first: use theirs.
    const theirs = readStoredSecret(file);
    if (!theirs) throw new ConfigError(`${file} appeared and vanished while the server was starting; start it again`);
    return theirs;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The stored secret; null when there is none yet. A weak or unreadable one stops the start-up. */
function readStoredSecret(file: string): Uint8Array | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new ConfigError(`cannot read the JWT secret in ${file} (${code ?? (err as Error).message}): make it a file readable by the server, or delete it to have a new one generated`);
  }
  const secret = new TextEncoder().encode(text.trim());
  if (secret.length < MIN_SECRET_BYTES) {
    const what = secret.length === 0 ? 'is empty' : `holds only ${secret.length} byte${secret.length === 1 ? '' : 's'}`;
    throw new ConfigError(
      `the JWT secret in ${file} ${what}, fewer than ${MIN_SECRET_BYTES}: delete the file to have a new one generated at start (signs everyone out), ` +
      `or write ${MIN_SECRET_BYTES}+ random bytes to it (openssl rand -base64 48 > ${file}), or set JWT_SECRET`,
    );
  }
  return secret;
}

// Verified tokens, so a client that reuses its token (every CI client does)
// is not re-verified through WebCrypto on each request. Only the signature
// check is cached: expiry is re-checked, and the user's role and activity are
// still read from the database on every request.
const VERIFIED_MAX = 10_000;

export function createTokenIssuer(secret: Uint8Array, ttlSeconds: number): TokenIssuer {
  const verified = new Map<string, Claims>();
  return {
    ttlSeconds,
    async sign(userId, sessionId) {
      const token = await new SignJWT({ sid: sessionId })
        .setProtectedHeader({ alg: ALG, typ: 'JWT' })
        .setSubject(userId)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
        .sign(secret);
      return { token, expiresIn: ttlSeconds };
    },
    async verify(token) {
      const hit = verified.get(token);
      if (hit) {
        if (hit.expiresAt > Date.now()) return hit;
        verified.delete(token);
        return { problem: 'token expired' };
      }
      try {
        const { payload } = await jwtVerify(token, secret, { algorithms: [ALG], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['exp', 'sub'] });
        if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number') return { problem: 'invalid token' };
        // Ours, but from before sessions could be revoked: it cannot be checked, so it no longer counts.
        if (typeof payload.sid !== 'string') return { problem: 'token revoked' };
        const claims: Claims = { userId: payload.sub, sessionId: payload.sid, expiresAt: payload.exp * 1000 };
        if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
        verified.set(token, claims);
        return claims;
      } catch (err) {
        return { problem: problemOf(err) };
      }
    },
  };
}
