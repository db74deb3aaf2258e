// Login throttling that cannot be turned against users. Failures are counted
// in a sliding window at three levels:
// - per (account, client address): after a few failures that pair waits, for
//   a delay that doubles with each further failure. One person mistyping a
//   password blocks nobody else, and nobody else's account;
// - per client address, across accounts: a much larger budget, against one
//   address spraying many accounts;
// - per account, across addresses: past a budget the account is slowed to
//   one attempt per second in all, so a distributed guesser gets little while
//   the account's owner still gets through after a second's wait.
// In-process: with several API processes each enforces its own budget.

export interface LoginThrottle {
  /** Seconds until this account may be tried from this address, or 0 when it may be now. */
  retryAfter(account: string, address: string): number;
  failed(account: string, address: string): void;
  succeeded(account: string, address: string): void;
}

export interface ThrottleLimits {
  /** Failures of one (account, address) pair before it has to wait. */
  pairFree: number;
  /** The first wait of a pair, doubled at each further failure, up to pairMaxDelayMs. */
  pairDelayMs: number;
  pairMaxDelayMs: number;
  /** Failures from one address, over all accounts, before it is refused until the window moves on. */
  addressBudget: number;
  /** Failures of one account, over all addresses, before it is slowed down to one attempt per accountSpacingMs. */
  accountBudget: number;
  accountSpacingMs: number;
  windowMs: number;
}

export const LOGIN_LIMITS: ThrottleLimits = {
  pairFree: 5,
  pairDelayMs: 1_000,
  pairMaxDelayMs: 15 * 60_000,
  addressBudget: 100,
  accountBudget: 20,
  accountSpacingMs: 1_000,
  windowMs: 15 * 60_000,
};

/** Failure times per key in a sliding window, with a bound on the number of keys. */
function failureLog(windowMs: number, maxKeys: number) {
  const failures = new Map<string, number[]>();
  return {
    recent(key: string, now: number): number[] {
      const list = (failures.get(key) ?? []).filter((t) => now - t < windowMs);
      if (list.length) failures.set(key, list);
      else failures.delete(key);
      return list;
    },
    add(key: string, now: number, keep: number) {
      const list = this.recent(key, now);
      list.push(now);
      if (list.length > keep) list.splice(0, list.length - keep);
      // Bound memory under a spray of distinct keys: forget the oldest one.
      if (!failures.has(key) && failures.size >= maxKeys) failures.delete(failures.keys().next().value!);
      failures.set(key, list);
    },
    clear(key: string) {
      failures.delete(key);
    },
  };
}

export function createLoginThrottle(limits: ThrottleLimits = LOGIN_LIMITS, maxKeys = 100_000): LoginThrottle {
  const log = failureLog(limits.windowMs, maxKeys);
  // When each slowed-down account was last tried (the one attempt per spacing).
  const lastTry = new Map<string, number>();
  const pair = (account: string, address: string) => `p:${account}\n${address}`;
  const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

  return {
    retryAfter(account, address) {
      const now = Date.now();
      const p = log.recent(pair(account, address), now);
      if (p.length >= limits.pairFree) {
        const delay = Math.min(limits.pairMaxDelayMs, limits.pairDelayMs * 2 ** (p.length - limits.pairFree));
        const wait = p.at(-1)! + delay - now;
        if (wait > 0) return seconds(wait);
      }
      const a = log.recent(`a:${address}`, now);
      if (a.length >= limits.addressBudget) return seconds(a[a.length - limits.addressBudget]! + limits.windowMs - now);
      if (log.recent(`u:${account}`, now).length >= limits.accountBudget) {
        const wait = (lastTry.get(account) ?? 0) + limits.accountSpacingMs - now;
        if (wait > 0) return seconds(wait);
        lastTry.set(account, now);
        if (lastTry.size > maxKeys) lastTry.delete(lastTry.keys().next().value!);
      }
      return 0;
    },
    failed(account, address) {
      const now = Date.now();
      // A pair's delay grows with its failures: keep enough of them to reach the longest delay.
      log.add(pair(account, address), now, limits.pairFree + 32);
      log.add(`a:${address}`, now, limits.addressBudget);
      log.add(`u:${account}`, now, limits.accountBudget);
    },
    succeeded(account, address) {
      log.clear(pair(account, address));
    },
  };
}
