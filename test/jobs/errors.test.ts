// Errors a person can act on (issue 15): each answer says what to do next.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

describe('errors a person can act on', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite');
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  it('/docs/ leads to the same Swagger UI as /docs', async () => {
    const res = await fetch(`${s.url}/docs/`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${s.url}/docs`);
    const page = await res.text();
    expect(page).toBe(await (await fetch(`${s.url}/docs`)).text());
    expect(page).toContain('openapi.json');
  });
});
