// Login throttling that cannot be turned against users (issue #12), at the
// level of the throttle itself (its budgets made small), and end to end
// behind a reverse proxy (TRUST_PROXY) on a real server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoginThrottle, type ThrottleLimits } from '../../src/auth/rateLimiter.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SMALL: ThrottleLimits = { pairFree: 2, pairDelayMs: 10_000, pairMaxDelayMs: 60_000, addressBudget: 5, accountBudget: 4, accountSpacingMs: 3_000, windowMs: 60_000 };

describe('the login throttle', () => {
  it('makes one (account, address) pair wait after a few failures, for a delay that doubles, and nobody else', () => {
    const t = createLoginThrottle(SMALL);
    t.failed('a@x', '10.0.0.1');
    expect(t.retryAfter('a@x', '10.0.0.1')).toBe(0);
    t.failed('a@x', '10.0.0.1');
    expect(t.retryAfter('a@x', '10.0.0.1')).toBe(10);
    t.failed('a@x', '10.0.0.1');
    expect(t.retryAfter('a@x', '10.0.0.1')).toBe(20);
    // The same account elsewhere, another account here: free.
    expect(t.retryAfter('a@x', '10.0.0.2')).toBe(0);
    expect(t.retryAfter('b@x', '10.0.0.1')).toBe(0);
    // A success clears the pair.
    t.succeeded('a@x', '10.0.0.1');
    expect(t.retryAfter('a@x', '10.0.0.1')).toBe(0);
  });

  it('stops one address spraying many accounts, and only that address', () => {
    const t = createLoginThrottle(SMALL);
    for (let i = 0; i < 5; i++) t.failed(`user${i}@x`, '10.0.0.9');
    expect(t.retryAfter('fresh@x', '10.0.0.9')).toBeGreaterThan(0);
    expect(t.retryAfter('fresh@x', '10.0.0.10')).toBe(0);
  });

  it('slows an account guessed from many addresses to one attempt per spacing, but never shuts it', () => {
    const t = createLoginThrottle(SMALL);
    for (let i = 0; i < 4; i++) t.failed('target@x', `10.1.0.${i}`);
    // The owner, from an address with no failures: one attempt now ...
    expect(t.retryAfter('target@x', '10.2.0.1')).toBe(0);
    // ... and the next one, from anywhere, a few seconds later.
    expect(t.retryAfter('target@x', '10.2.0.2')).toBe(3);
    expect(t.retryAfter('other@x', '10.2.0.2')).toBe(0);
  });
});

// Every attempt costs an argon2 verification: one provider keeps the suite short.
describe('behind a reverse proxy (TRUST_PROXY)', () => {
  let proxied: TestServer;
  let direct: TestServer;
  beforeAll(async () => {
    [proxied, direct] = await Promise.all([startServer('sqlite', { TRUST_PROXY: 'on' }), startServer('sqlite')]);
  });
  afterAll(async () => {
    await Promise.all([proxied?.stop(), direct?.stop()]);
  });

  const login = (s: TestServer, username: string, password: string, forwardedFor: string) =>
    fetch(`${s.api}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': forwardedFor },
      body: new URLSearchParams({ username, password }).toString(),
    });

  it('counts failures per client behind the proxy: one client guessing does not stop another, whatever it puts in X-Forwarded-For', async () => {
    const victim = await proxied.user('operator');
    let last = 0;
    for (let i = 0; i < 8 && last !== 429; i++) {
      // The client forges an earlier entry; the proxy appends the address it saw.
      last = (await login(proxied, victim.email, `wrong-${i}`, `203.0.113.${i}, 198.51.100.7`)).status;
    }
    expect(last).toBe(429);
    const owner = await login(proxied, victim.email, victim.password, '198.51.100.8');
    expect(owner.status).toBe(200);
  });

  it('without TRUST_PROXY the header is ignored: rotating it does not dodge the throttle', async () => {
    const victim = await direct.user('operator');
    let last = 0;
    for (let i = 0; i < 8 && last !== 429; i++) last = (await login(direct, victim.email, `wrong-${i}`, `203.0.113.${i}`)).status;
    expect(last).toBe(429);
  });
});
