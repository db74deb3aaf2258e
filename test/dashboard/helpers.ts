// Shared by the dashboard's browser tests: a fresh bundle, a page that
// records every request and every console or page error, signing in, and
// screenshots into test-output/screenshots/ (not committed).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { expect } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOTS = join(ROOT, 'test-output', 'screenshots');

function newest(dir: string): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newest(p) : st.mtimeMs);
  }
  return t;
}

/** Builds dist/web when it is missing or older than web/ (the server reads it at start). */
export function ensureWebBuilt(): void {
  const index = join(ROOT, 'dist', 'web', 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= Math.max(newest(join(ROOT, 'web')), statSync(join(ROOT, 'scripts', 'build-web.mjs')).mtimeMs)) return;
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs')], { stdio: 'pipe' });
}

export interface Watched {
  context: BrowserContext;
  page: Page;
  /** Anything that must not happen: another host, a failed request, a console error, an uncaught error. */
  problems: string[];
  /** Every request the page made. */
  requests: Request[];
  /** URLs of the WebSockets the page opened (the browser's own, not a routed stand-in). */
  sockets: string[];
  /** The GraphQL operations sent over HTTP (their query text). */
  operations(): string[];
}

/** A fresh context (its own sessionStorage) and page at `width`×`height`, recording everything. */
export async function watchedPage(browser: Browser, baseUrl: string, viewport = { width: 1280, height: 900 }): Promise<Watched> {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const origin = new URL(baseUrl).origin;
  const wsOrigin = origin.replace(/^http/, 'ws');
  const problems: string[] = [];
  const requests: Request[] = [];
  const sockets: string[] = [];
  page.on('request', (r) => {
    requests.push(r);
    const url = r.url();
    if (/^(data|blob):/.test(url)) return;
    const o = new URL(url).origin;
    if (o !== origin && o !== wsOrigin) problems.push(`request to another host: ${url}`);
  });
  page.on('websocket', (ws) => {
    sockets.push(ws.url());
    if (new URL(ws.url()).origin !== wsOrigin) problems.push(`WebSocket to another host: ${ws.url()}`);
  });
  page.on('requestfailed', (r) => {
    // Downloads of blob: URLs end as "aborted" navigations; nothing failed.
    if (!r.url().startsWith('blob:')) problems.push(`failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`unexpected dialog: ${d.type()} ${d.message()}`);
    void d.dismiss();
  });
  const operations = () =>
    requests
      .filter((r) => new URL(r.url()).pathname === '/graphql' && r.method() === 'POST')
      .map((r) => {
        try {
          return String(JSON.parse(r.postData() ?? '{}').query ?? '');
        } catch {
          return '';
        }
      });
  return { context, page, problems, requests, sockets, operations };
}

export async function signIn(page: Page, baseUrl: string, email: string, password: string, hash = ''): Promise<void> {
  const res = await page.goto(`${baseUrl}/${hash}`);
  expect(res?.status()).toBe(200);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Password').press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor({ timeout: 20_000 });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** The texts of the rows the log viewer has in the DOM. */
export async function renderedLogRows(page: Page): Promise<string[]> {
  return page.locator('.log-row .txt').allInnerTexts();
}
