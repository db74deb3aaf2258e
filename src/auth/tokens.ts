// JWTs: HS256 pinned on both sign and verify, with iss/aud/exp checked. The
// token carries only the subject; role and activity come from the database.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, jwtVerify } from 'jose';

const ALG = 'HS256';
export const ISSUER = 'jobrunner';
export const AUDIENCE = 'jobrunner-api';

export interface TokenIssuer {
  sign(userId: string): Promise<{ token: string; expiresIn: number }>;
  /** The user id, or null for any invalid, expired or foreign token. */
  verify(token: string): Promise<{ userId: string; expiresAt: number } | null>;
}

/** JWT_SECRET when set, else a secret generated once and kept in the data directory. */
export function resolveSecret(configured: string | null, dataDir: string): Uint8Array {
  if (configured) return new TextEncoder().encode(configured);
  const file = join(dataDir, 'jwt-secret');
  try {
    return new TextEncoder().encode(readFileSync(file, 'utf8').trim());
  } catch {
    mkdirSync(dataDir, { recursive: true });
    const secret = randomBytes(48).toString('base64url');
    try {
      writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
    } catch {
      // Another process wrote it first: use theirs.
      return new TextEncoder().encode(readFileSync(file, 'utf8').trim());
    }
    return new TextEncoder().encode(secret);
  }
}

// Verified tokens, so a client that reuses its token (every CI client does)
// is not re-verified through WebCrypto on each request. Only the signature
// check is cached: expiry is re-checked, and the user's role and activity are
// still read from the database on every request.
const VERIFIED_MAX = 10_000;

export function createTokenIssuer(secret: Uint8Array, ttlSeconds: number): TokenIssuer {
  const verified = new Map<string, { userId: string; expiresAt: number }>();
  return {
    async sign(userId) {
      const token = await new SignJWT({})
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
        return null;
      }
      try {
        const { payload } = await jwtVerify(token, secret, { algorithms: [ALG], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['exp', 'sub'] });
        if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number') return null;
        const claims = { userId: payload.sub, expiresAt: payload.exp * 1000 };
        if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
        verified.set(token, claims);
        return claims;
      } catch {
        return null;
      }
    },
  };
}
