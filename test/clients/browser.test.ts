// In Chromium: GraphQL Playground at /playground (the vendored 1.7.28 build)
// runs a query with nothing fetched from another host, and GraphiQL at
// /graphql shows its default query on a first visit and runs a jobUpdated
// subscription (over SSE) with only the Authorization header set.
// Transport behaviour: one provider (SQLite) is enough.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('GraphQL IDEs in Chromium', () => {
  let s: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    [s, browser] = await Promise.all([startServer('sqlite'), launchBrowser()]);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  /** A fresh page that records anything fetched from another host, failed or answered with an error. */
  async function open(path: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage();
    const origin = new URL(s.url).origin;
    const problems: string[] = [];
    page.on('request', (r) => {
      if (!/^(data|blob|ws):/.test(r.url()) && new URL(r.url()).origin !== origin) problems.push(`request to another host: ${r.url()}`);
    });
    page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} (${r.failure()?.errorText})`));
    page.on('pageerror', (e) => problems.push(`uncaught error: ${e.message}`));
    const res = await page.goto(`${s.url}${path}`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    return { page, problems };
  }

  it('Playground: endpoint preset, runs the default query, everything from this server', async () => {
    const { page, problems } = await open('/playground');
    await page.locator('.CodeMirror').first().waitFor({ state: 'visible', timeout: 20_000 });
    await expect.poll(() => page.locator('.CodeMirror').first().innerText(), { timeout: 10_000 }).toContain('health');
    await page.locator('.CodeMirror').first().click();
    await page.keyboard.press('Control+Enter');
    await expect.poll(() => page.locator('body').innerText(), { timeout: 20_000 }).toMatch(/"status":\s*"ok"/);
    expect(problems.filter((p) => !p.includes('.map'))).toEqual([]);
    await page.close();
  });

  it('GraphiQL: the default query on a first visit; a jobUpdated subscription with only the Authorization header', async () => {
    const { page, problems } = await open('/graphql');
    const editor = page.locator('.graphiql-query-editor .monaco-editor').first();
    await editor.waitFor({ state: 'visible', timeout: 20_000 });
    await expect.poll(() => editor.innerText(), { timeout: 10_000 }).toContain('health');

    const job = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'watched', command: ['sh', '-c', 'sleep 3'] } });
    expect(job.status).toBe(202);

    await page.getByRole('button', { name: /^headers$/i }).first().click();
    const headers = page.locator('.graphiql-editor-tool .monaco-editor').last();
    await headers.waitFor({ state: 'visible', timeout: 10_000 });
    await headers.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(`{ "Authorization": "Bearer ${s.adminToken}" }`);

    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(`subscription { jobUpdated(id: "${job.body.id}") { id status } }`);
    const subscribed = page.waitForRequest((r) => r.url().includes('/graphql?query=subscription'));
    await page.locator('.graphiql-execute-button').first().click();
    const request = await subscribed;
    expect(request.method()).toBe('GET');
    expect(request.headers()['authorization']).toBe(`Bearer ${s.adminToken}`);
    expect(Object.keys(request.headers()).filter((h) => h.includes('csrf'))).toEqual([]);
    await expect.poll(() => page.locator('.graphiql-response').first().innerText(), { timeout: 20_000 }).toMatch(/"jobUpdated"[\s\S]*"status":\s*"SUCCESS"/);
    // The client ends the event stream itself after `complete` (net::ERR_ABORTED).
    expect(problems.filter((p) => !(p.includes('/graphql?query=subscription') && p.includes('ERR_ABORTED')))).toEqual([]);
    await page.close();
  });
});
