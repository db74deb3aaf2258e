// A 10 MiB log in the dashboard's viewer (Chromium, real server): the whole
// output arrives, the DOM holds a bounded number of rows however long the
// log, the last line is reachable from the keyboard and shown, and search
// finds a line in the middle. Browser behaviour: one provider (SQLite).
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../helpers/browser.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { ensureWebBuilt, screenshot, signIn, watchedPage } from './helpers.js';

/** 64 bytes per line with its newline: 163,840 lines make exactly 10 MiB (MAX_LOG_BYTES keeps it all). */
const BIG_LOG_LINES = 163_840;
const BIG_LOG_COMMAND = ['seq', '-f', 'line %07g of a ten mebibyte log, padded to 64 bytes.........', '1', String(BIG_LOG_LINES)];

describe('log viewer with a 10 MiB log', () => {
  let s: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    ensureWebBuilt();
    [s, browser] = await Promise.all([startServer('sqlite'), launchBrowser()]);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('keeps the rendered rows bounded, reaches and shows the last line, finds a line in the middle', async () => {
    const job = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'ten-mib', command: BIG_LOG_COMMAND } });
    expect(job.status).toBe(202);
    const done = await waitFor(async () => {
      const j = (await s.request('GET', `/jobs/${job.body.id}`, { token: s.adminToken })).body;
      return j.status === 'success' && j;
    }, 60_000);
    expect((await s.graphql('query ($id: ID!) { job(id: $id) { stdoutTruncated } }', { id: job.body.id })).data.job.stdoutTruncated).toBe(false);

    const w = await watchedPage(browser, s.url);
    const page = w.page;
    await signIn(page, s.url, ADMIN_EMAIL, ADMIN_PASSWORD, `#/jobs/${job.body.id}`);
    const rows = page.locator('.log-row');
    // While the output streams in, and once it is all there, the DOM holds only the rows around the view.
    const counts: number[] = [];
    await expect
      .poll(
        async () => {
          counts.push(await rows.count());
          return page.locator('.log-phase').innerText();
        },
        { timeout: 90_000, interval: 250 },
      )
      .toBe('complete');
    expect(await page.locator('.log-size').innerText()).toMatch(/^163,840 lines · 10240\.0 KiB/);
    const bound = 32 + 2 * 20 + 2; // a 640 px box of 20 px rows, plus the margin above and below
    expect(Math.max(...counts, await rows.count())).toBeLessThanOrEqual(bound);

    // From the keyboard: Home goes to the top, End to the last line.
    const box = page.getByRole('log', { name: 'Job output' });
    await box.focus();
    await page.keyboard.press('Home');
    await page.locator('.log-row[data-line="1"]').waitFor();
    await page.keyboard.press('End');
    const lastRow = page.locator(`.log-row[data-line="${BIG_LOG_LINES}"]`);
    await lastRow.waitFor();
    expect(await lastRow.locator('.txt').innerText()).toBe(`line ${String(BIG_LOG_LINES).padStart(7, '0')} of a ten mebibyte log, padded to 64 bytes.........`);
    const [rowBox, viewBox] = [await lastRow.boundingBox(), await box.boundingBox()];
    expect(rowBox!.y).toBeGreaterThanOrEqual(viewBox!.y);
    expect(rowBox!.y + rowBox!.height).toBeLessThanOrEqual(viewBox!.y + viewBox!.height + 1);
    expect(await rows.count()).toBeLessThanOrEqual(bound);
    await screenshot(page, 'log-10mib-end');

    // Search over all of it.
    await page.getByRole('searchbox', { name: 'Search the output' }).fill('line 0081920 ');
    await expect.poll(() => page.locator('.match-count').innerText(), { timeout: 10_000 }).toBe('1 / 1');
    const match = page.locator('.log-row.match');
    await match.waitFor();
    expect(await match.getAttribute('data-line')).toBe('81920');
    expect(await rows.count()).toBeLessThanOrEqual(bound);
    expect(w.problems).toEqual([]);
    await w.context.close();
  });
});
