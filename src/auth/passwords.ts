import argon2 from 'argon2';

// argon2id at OWASP's recommended cost (19 MiB, t=2, p=1). The library's
// default (64 MiB, p=4) would add 64 MiB of RSS per concurrent login to the
// process that also forks every job, where a bigger heap makes spawn slower.
const OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, OPTIONS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

// Verified against when the email is unknown, so a miss costs what a hit does.
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  return (dummyHash ??= hashPassword('not-a-real-password-' + Math.random()));
}
