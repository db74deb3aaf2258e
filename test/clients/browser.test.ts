// In Chromium: GraphQL Playground at /playground (the vendored 1.7.28 build)
// runs a query with nothing fetched from another host and, with the
// Authorization header in its HTTP HEADERS panel, a jobLog subscription over
// its legacy graphql-ws (subscriptions-transport-ws) socket that shows the
// job's output while it runs; GraphiQL at
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

  it('Playground: a jobLog subscription over its legacy WebSocket transport shows chunks while the job runs', async () => {
    const { page, problems } = await open('/playground');
    const query = page.locator('.CodeMirror').first();
    await query.waitFor({ state: 'visible', timeout: 20_000 });
    await expect.poll(() => query.innerText(), { timeout: 10_000 }).toContain('health');

    // Prints tick-1 … tick-40, one every 200 ms (about 8 s).
    const job = await s.request('POST', '/jobs', {
      token: s.adminToken,
      body: { name: 'playground-log', command: ['sh', '-c', 'for i in $(seq 1 40); do echo tick-$i; sleep 0.2; done'] },
    });
    expect(job.status).toBe(202);

    // The HTTP HEADERS panel (Playground sends them as connectionParams in connection_init).
    await page.getByText(/^HTTP Headers/).first().click();
    // The editors: the query, the variables/headers panel, the result.
    const headers = page.locator('.CodeMirror').nth(1);
    await headers.waitFor({ state: 'visible', timeout: 10_000 });
    await headers.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(`{ "Authorization": "Bearer ${s.adminToken}" }`);

    await query.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(`subscription { jobLog(id: "${job.body.id}") { seq data } }`);
    const sockets: string[] = [];
    const sent: any[] = [];
    page.on('websocket', (ws) => {
      sockets.push(ws.url());
      ws.on('framesent', (f) => sent.push(JSON.parse(String(f.payload))));
    });
    await page.getByTitle('Execute Query (Ctrl-Enter)').click();

    // The page's text: "tick-" can only come from the responses (the editors hold the query and the header).
    const results = () => page.locator('body').innerText();
    const status = async () => (await s.request('GET', `/jobs/${job.body.id}`, { token: s.adminToken })).body.status;
    // Some tick shows while the job still runs.
    await expect.poll(() => results(), { timeout: 10_000 }).toMatch(/tick-\d+/);
    expect(await status()).toBe('running');
    const seen = Number((await results()).match(/tick-(\d+)/)![1]);
    expect(seen).toBeLessThan(40);
    // More arrive afterwards, pushed over the same socket.
    await expect.poll(() => results(), { timeout: 10_000 }).toContain(`tick-${seen + 2}`);
    expect(sockets).toEqual([`${s.url.replace(/^http/, 'ws')}/graphql`]);
    // The legacy protocol's messages, the token in connection_init's payload.
    await expect.poll(() => sent.map((m) => m.type), { timeout: 5_000 }).toEqual(expect.arrayContaining(['connection_init', 'start']));
    expect(sent.find((m) => m.type === 'connection_init').payload).toMatchObject({ Authorization: `Bearer ${s.adminToken}` });
    // The last line arrives too, and the job ends (it sleeps 200 ms after it).
    await expect.poll(() => results(), { timeout: 15_000 }).toContain('tick-40');
    await expect.poll(() => status(), { timeout: 5_000 }).toBe('success');
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
