// Counts failed logins per key (username, client address) in a sliding
// window; past the limit the key is locked out until the window moves on.
// In-process: with several API processes each enforces its own budget.

export interface FailureLimiter {
  /** Seconds until the key may try again, or 0 when it may try now. */
  retryAfter(key: string): number;
  fail(key: string): void;
  reset(key: string): void;
}

export function createFailureLimiter(maxFailures: number, windowMs: number, maxKeys = 100_000): FailureLimiter {
  const failures = new Map<string, number[]>();
  const recent = (key: string, now: number) => {
    const list = (failures.get(key) ?? []).filter((t) => now - t < windowMs);
    if (list.length) failures.set(key, list);
    else failures.delete(key);
    return list;
  };
  return {
    retryAfter(key) {
      const now = Date.now();
      const list = recent(key, now);
      if (list.length < maxFailures) return 0;
      return Math.max(1, Math.ceil((list[list.length - maxFailures]! + windowMs - now) / 1000));
    },
    fail(key) {
      const now = Date.now();
      const list = recent(key, now);
      list.push(now);
      if (list.length > maxFailures) list.splice(0, list.length - maxFailures);
      // Bound memory under a spray of distinct usernames: forget the oldest key.
      if (!failures.has(key) && failures.size >= maxKeys) failures.delete(failures.keys().next().value!);
      failures.set(key, list);
    },
    reset(key) {
      failures.delete(key);
    },
  };
}
