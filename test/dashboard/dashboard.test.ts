// The web dashboard at `/`, in Chromium against a real server: signing in,
// the jobs table kept live by the subscription (not by polling), submitting
// from the form with the API's validation shown by the fields, a job's log
// followed live and resumed after a dropped WebSocket without gap or
// duplicate, ANSI colours rendered and every other escape shown as text,
// what each role sees and may do, an admin changing limits, an expired
// session returning to the page it left. Every test also checks that the page
// asked nothing of another host and logged no error (a CSP violation is one).
// Browser behaviour: one provider (SQLite) is enough.
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../helpers/browser.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, expiredToken, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { ensureWebBuilt, screenshot, signIn, watchedPage } from './helpers.js';

describe('web dashboard', () => {
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

  const jobStatus = async (id: string) => (await s.request('GET', `/jobs/${id}`, { token: s.adminToken })).body.status as string;

  it('serves the page with a strict CSP, hashed immutable bundles, and keeps /docs, /graphql and /playground', async () => {
    const index = await fetch(`${s.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const csp = index.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'"]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    const html = await index.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    const assets = [...html.matchAll(/(?:src|href)="(\/web\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(2);
    for (const path of assets) {
      const res = await fetch(`${s.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-type')).toMatch(path.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
      expect(res.headers.get('content-security-policy')).toBe(csp);
    }
    // Revalidation of the page answers 304.
    expect((await fetch(`${s.url}/`, { headers: { 'if-none-match': index.headers.get('etag')! } })).status).toBe(304);
    // Only the built files: nothing else under /web/, no traversal.
    for (const path of ['/web/index.html', '/web/../package.json', '/web/%2e%2e/package.json', '/web/nope.js']) {
      expect((await fetch(`${s.url}${path}`)).status, path).toBe(404);
    }
    expect((await fetch(`${s.url}/docs`)).status).toBe(200);
    expect((await fetch(`${s.url}/playground`)).status).toBe(200);
    expect((await fetch(`${s.url}/graphql`, { headers: { accept: 'text/html' } })).status).toBe(200);
  });

  it('an operator submits from the form and watches it go pending → running → success in the table, live, with one list request', async () => {
    const op = await s.user('operator', { max_concurrent_jobs: 1 });
    // Holds the operator's only slot, so the next job waits (pending) until the test cancels this one.
    const blocker = await s.request('POST', '/jobs', { token: op.token, body: { name: 'blocker', command: ['sleep', '60'] } });
    expect(blocker.status).toBe(202);
    await waitFor(async () => (await jobStatus(blocker.body.id)) === 'running');

    const w = await watchedPage(browser, s.url);
    await signIn(w.page, s.url, op.email, op.password, '#/submit');
    const page = w.page;
    await page.getByLabel('Name', { exact: true }).fill('from-the-form');

    // The API's validation shows next to the field it names.
    await page.getByLabel('program', { exact: true }).fill('sh');
    await page.getByRole('button', { name: 'Add argument' }).click();
    await page.getByLabel('arg 1', { exact: true }).fill('-c');
    await page.getByRole('button', { name: 'Add argument' }).click();
    await page.getByLabel('arg 2', { exact: true }).fill('echo started; sleep 1.5; echo finished');
    await page.getByRole('button', { name: 'Add variable' }).click();
    await page.getByLabel('Variable 1 name').fill('1BAD');
    await page.getByLabel('Variable 1 value').fill('x');
    await page.getByLabel('Payload (JSON object, stored with the job)').fill('{"ticket": 42}');
    await page.getByRole('button', { name: 'Submit' }).click();
    await expect.poll(() => page.locator('#env-error').innerText(), { timeout: 10_000 }).toMatch(/not allowed|A-Za-z_/);
    await page.getByLabel('Variable 1 name').fill('GREETING');
    await page.getByLabel('Payload (JSON object, stored with the job)').fill('{"ticket": ');
    await page.getByRole('button', { name: 'Submit' }).click();
    await expect.poll(() => page.locator('#payload-error').innerText()).toMatch(/Not valid JSON/);
    await page.getByLabel('Payload (JSON object, stored with the job)').fill('{"ticket": 42}');
    await screenshot(page, 'submit-form');
    await page.getByRole('button', { name: 'Submit' }).click();

    // The job's page, then the table.
    await page.waitForURL(/#\/jobs\/[^/?]+$/, { timeout: 10_000 });
    const jobId = decodeURIComponent(page.url().split('#/jobs/')[1]!);
    await page.getByRole('link', { name: 'Jobs', exact: true }).click();
    const row = page.locator(`tr[data-job-id="${jobId}"]`);
    await row.waitFor({ timeout: 10_000 });
    const before = w.operations().length;
    // Every status the row shows, as it changes (recorded in the page, so no change is missed between polls).
    await row.evaluate((tr) => {
      const seen: string[] = [];
      (window as unknown as { statuses: string[] }).statuses = seen;
      const cell = tr.querySelector('.status-cell')!;
      const note = () => seen[seen.length - 1] !== cell.textContent && seen.push(cell.textContent ?? '');
      note();
      new MutationObserver(note).observe(cell, { subtree: true, childList: true, characterData: true });
    });
    expect(await row.locator('.status-cell').innerText()).toBe('pending');
    expect(await s.request('POST', `/jobs/${blocker.body.id}/cancel`, { token: op.token }).then((r) => r.status)).toBe(200);
    await expect.poll(() => row.locator('.status-cell').innerText(), { timeout: 30_000 }).toBe('success');
    expect(await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses)).toEqual(['pending', 'running', 'success']);
    // Live, not polling: no list query was made while watching (the counts are re-read after events).
    const during = w.operations().slice(before);
    expect(during.filter((q) => /\bjobs\s*\(/.test(q))).toEqual([]);
    // The blocker shows canceled, the counts follow.
    await expect.poll(() => page.locator(`tr[data-job-id="${blocker.body.id}"] .status-cell`).innerText()).toBe('canceled');
    await expect.poll(() => page.locator('.stat-success .stat-count').innerText()).toBe('1');
    // The events came over the browser's own WebSocket to this server, which the CSP's connect-src 'self' allows.
    expect(new Set(w.sockets)).toEqual(new Set([`${s.url.replace(/^http/, 'ws')}/graphql`]));
    await screenshot(page, 'jobs');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('follows a log live without moving the page, and resumes after the WebSocket drops without gap or duplicate', async () => {
    const w = await watchedPage(browser, s.url);
    const page = w.page;
    // The drop is a fault the test cannot cause from outside: Playwright's WebSocket route is a
    // proxy between the page and the real server, and the test closes it mid-stream.
    const routes: { page: import('playwright-core').WebSocketRoute; server: import('playwright-core').WebSocketRoute }[] = [];
    const sent: { socket: number; msg: any }[] = [];
    await page.routeWebSocket(/\/graphql$/, (ws) => {
      const server = ws.connectToServer();
      const socket = routes.push({ page: ws, server }) - 1;
      ws.onMessage((m) => {
        sent.push({ socket, msg: JSON.parse(String(m)) });
        server.send(m);
      });
    });
    await signIn(page, s.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    const job = await s.request('POST', '/jobs', {
      token: s.adminToken,
      body: { name: 'ticker', command: ['sh', '-c', 'for i in $(seq 1 60); do echo tick-$i; sleep 0.1; done'] },
    });
    await page.goto(`${s.url}/#/jobs/${job.body.id}`);
    const rows = page.locator('.log-row .txt');
    await expect.poll(async () => (await rows.allInnerTexts()).some((t) => /^tick-(1\d|[2-5]\d)$/.test(t)), { timeout: 20_000 }).toBe(true);
    expect(await jobStatus(job.body.id)).toBe('running');
    // Nothing on the page moves while lines arrive (Chromium's layout-shift entries, from here to the end).
    await page.evaluate(() => {
      const w = window as unknown as { shifts: number[] };
      w.shifts = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.shifts.push((e as unknown as { value: number }).value);
      }).observe({ type: 'layout-shift' });
    });
    // Drop both sides of the socket the viewer uses.
    const dropped = routes.length - 1;
    await routes[dropped]!.server.close({ code: 1001, reason: 'test drops the socket' });
    await routes[dropped]!.page.close({ code: 1001, reason: 'test drops the socket' });
    await expect.poll(() => page.locator('.log-phase').innerText(), { timeout: 30_000 }).toBe('complete');
    expect(routes.length).toBeGreaterThan(dropped + 1);
    expect(await page.evaluate(() => (window as unknown as { shifts: number[] }).shifts)).toEqual([]);

    // The resumed subscription asked for what follows the last chunk shown.
    const logSubs = sent.filter((f) => f.msg.type === 'subscribe' && String(f.msg.payload.query).includes('jobLog'));
    const resumed = logSubs.filter((f) => f.socket > dropped);
    expect(resumed.length).toBe(1);
    expect(resumed[0]!.msg.payload.variables.after).toBeGreaterThan(0);

    // Every line once, in order: the download holds the whole buffer.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
    const text = readFileSync((await download.path())!, 'utf8');
    expect(text.split('\n').filter(Boolean)).toEqual(Array.from({ length: 60 }, (_, i) => `tick-${i + 1}`));
    expect(await page.locator('.log-size').innerText()).toMatch(/^60 lines/);
    await screenshot(page, 'job-log');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('renders ANSI colours and shows every other escape sequence, and markup, as text', async () => {
    const hostile = [
      '\\033[31mred\\033[0m plain \\033[1;32mboldgreen\\033[0m \\033[38;5;208morange\\033[0m',
      '\\033]52;c;SGVsbG8=\\007clipboard',
      '\\033[2Jcleared \\033[?1049h alt',
      '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">',
      '',
    ].join('\\n');
    const job = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'ansi', command: ['printf', hostile] } });
    await waitFor(async () => (await jobStatus(job.body.id)) === 'success');
    const w = await watchedPage(browser, s.url);
    const page = w.page;
    await signIn(page, s.url, ADMIN_EMAIL, ADMIN_PASSWORD, `#/jobs/${job.body.id}`);
    await expect.poll(() => page.locator('.log-phase').innerText(), { timeout: 20_000 }).toBe('complete');
    const rows = await page.locator('.log-row .txt').allInnerTexts();
    expect(rows).toEqual([
      'red plain boldgreen orange',
      '^[]52;c;SGVsbG8=^Gclipboard',
      '^[[2Jcleared ^[[?1049h alt',
      '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">',
    ]);
    expect(await page.locator('.log-row .fg1').first().innerText()).toBe('red');
    expect(await page.locator('.log-row .b.fg2').first().innerText()).toBe('boldgreen');
    expect(await page.locator('.log-row .fg1').first().evaluate((e) => getComputedStyle(e).color)).not.toBe(await page.locator('.log-row .txt').first().evaluate((e) => getComputedStyle(e).color));
    expect(await page.locator('.log-row .txt span', { hasText: /^orange$/ }).evaluate((e) => (e as HTMLElement).style.color)).toBe('rgb(255, 135, 0)');
    expect(await page.locator('.log-row .esc').count()).toBeGreaterThanOrEqual(3);
    await screenshot(page, 'job-ansi');
    expect(await page.locator('.log-box script, .log-box img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();

    // stdout and stderr interleaved in order, each row marked with its stream.
    const script = [
      "printf '\\033[1mbuild\\033[0m step 1/3: compiling\\n'",
      "printf '\\033[32mok\\033[0m 42 files\\n'",
      "printf '\\033[33mwarning\\033[0m: unused variable x\\n' >&2",
      "printf 'step 2/3: \\033[36mtesting\\033[0m\\n'",
      "printf '\\033[31merror\\033[0m: 1 test failed\\n' >&2",
      "printf 'step 3/3: \\033[35mpackaging\\033[0m\\n'",
    ].join('; sleep 0.05; ');
    const build = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'build', command: ['sh', '-c', script] } });
    await waitFor(async () => (await jobStatus(build.body.id)) === 'success');
    await page.goto(`${s.url}/#/jobs/${build.body.id}`);
    await expect.poll(() => page.locator('.log-phase').innerText(), { timeout: 20_000 }).toBe('complete');
    const marks = await page.locator('.log-row').evaluateAll((rows) => rows.map((r) => `${r.querySelector('.mark')!.textContent} ${r.querySelector('.txt')!.textContent}`));
    expect(marks).toEqual([
      'out build step 1/3: compiling',
      'out ok 42 files',
      'err warning: unused variable x',
      'out step 2/3: testing',
      'err error: 1 test failed',
      'out step 3/3: packaging',
    ]);
    expect(await page.locator('.log-row.stderr').count()).toBe(2);
    await screenshot(page, 'job-build-log');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('a viewer sees everyone’s jobs and no action buttons', async () => {
    const op = await s.user('operator');
    const opJob = await s.request('POST', '/jobs', { token: op.token, body: { name: 'operators-job', command: ['sleep', '30'] } });
    await waitFor(async () => (await jobStatus(opJob.body.id)) === 'running');
    const adminJob = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'admins-job', command: ['true'] } });
    const viewer = await s.user('viewer');
    const w = await watchedPage(browser, s.url);
    const page = w.page;
    await signIn(page, s.url, viewer.email, viewer.password);
    await page.locator(`tr[data-job-id="${opJob.body.id}"]`).waitFor({ timeout: 10_000 });
    await page.locator(`tr[data-job-id="${adminJob.body.id}"]`).waitFor(); // the admin's jobs too
    await screenshot(page, 'jobs-viewer');
    await expect.poll(() => page.getByRole('navigation', { name: 'Main' }).innerText()).not.toMatch(/Submit|Admin/);
    expect(await page.getByRole('link', { name: 'New job' }).count()).toBe(0);
    await page.locator(`tr[data-job-id="${opJob.body.id}"] a`).click();
    await page.getByRole('heading', { name: /operators-job/ }).waitFor();
    await expect.poll(() => page.locator('.log-phase').innerText()).not.toBe('connecting…');
    expect(await page.locator('article .title-row .actions').innerText()).toBe('');
    expect(await page.getByRole('button', { name: /Cancel|Purge|Force-complete/ }).count()).toBe(0);
    await s.request('POST', `/jobs/${opJob.body.id}/cancel`, { token: op.token });
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('an admin cancels a running job after confirming, changes the default and a user’s limit, creates a user, demotes them, resets their password and deactivates them', async () => {
    const job = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'to-cancel', command: ['sleep', '30'] } });
    const op = await s.user('operator');
    const w = await watchedPage(browser, s.url);
    const page = w.page;
    await signIn(page, s.url, ADMIN_EMAIL, ADMIN_PASSWORD, `#/jobs/${job.body.id}`);
    await expect.poll(() => page.locator('h1 .badge').innerText(), { timeout: 10_000 }).toBe('running');
    await page.getByRole('button', { name: 'Cancel' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await screenshot(page, 'confirm-cancel');
    await dialog.getByRole('button', { name: 'Keep it' }).click();
    expect(await jobStatus(job.body.id)).toBe('running');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await dialog.getByRole('button', { name: 'Cancel job' }).click();
    await expect.poll(() => page.locator('h1 .badge').innerText(), { timeout: 20_000 }).toBe('canceled');
    expect(await jobStatus(job.body.id)).toBe('canceled');

    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByLabel('Running jobs per user (default)').fill('7');
    await page.getByRole('button', { name: 'Set default' }).click();
    await page.getByText('Saved: default limit.').waitFor();
    expect((await s.graphql('{ limits { defaultMaxConcurrentJobs } }')).data.limits.defaultMaxConcurrentJobs).toBe(7);
    await page.getByLabel(`Job limit of ${op.email} (empty: the default)`).fill('2');
    await page.locator(`tr[data-user-id="${op.id}"]`).getByRole('button', { name: 'Set', exact: true }).click();
    await page.getByText(`Saved: limit of ${op.email}.`).waitFor();
    expect((await s.graphql('query ($id: ID!) { user(id: $id) { maxConcurrentJobs } }', { id: op.id })).data.user.maxConcurrentJobs).toBe(2);

    // A new user, made a viewer, then deactivated: each confirmed, each what the API now says.
    const email = `created-${Date.now()}@example.com`;
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill('Created-Passw0rd!');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByText(`Saved: user ${email} created.`).waitFor();
    const created = (await s.graphql('{ users { id email role isActive } }')).data.users.find((u: { email: string }) => u.email === email);
    expect(created).toMatchObject({ role: 'OPERATOR', isActive: true });
    const row = page.locator(`tr[data-user-id="${created.id}"]`);
    await row.getByLabel(`Role of ${email}`).selectOption('VIEWER');
    await page.getByRole('dialog').getByRole('button', { name: 'Change role' }).click();
    await page.getByText(`Saved: role of ${email}.`).waitFor();
    await row.getByRole('button', { name: 'Reset' }).click();
    await page.getByRole('dialog').getByLabel('New password (8 to 256 characters)').fill('Reset-Passw0rd!');
    await page.getByRole('dialog').getByRole('button', { name: 'Set password' }).click();
    await page.getByText(`Saved: password of ${email} reset; their sessions ended.`).waitFor();
    expect(await s.token(email, 'Reset-Passw0rd!')).toBeTruthy();
    await row.getByRole('button', { name: 'Deactivate' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Deactivate' }).click();
    await page.getByText(`Saved: ${email} deactivated.`).waitFor();
    expect((await s.graphql('query ($id: ID!) { user(id: $id) { role isActive } }', { id: created.id })).data.user).toEqual({ role: 'VIEWER', isActive: false });
    await screenshot(page, 'admin');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('filters by status and name, and pages to older jobs and back', async () => {
    const op = await s.user('operator', { max_concurrent_jobs: 20 });
    const ids: string[] = [];
    for (let i = 0; i < 52; i++) ids.push((await s.request('POST', '/jobs', { token: op.token, body: { name: `page-${i}`, command: ['true'] } })).body.id);
    const failing = await s.request('POST', '/jobs', { token: op.token, body: { name: 'will-fail', command: ['false'] } });
    await waitFor(async () => (await jobStatus(failing.body.id)) === 'failed' && (await jobStatus(ids[0]!)) === 'success');
    const w = await watchedPage(browser, s.url);
    const page = w.page;
    await signIn(page, s.url, op.email, op.password);
    await page.locator(`tr[data-job-id="${failing.body.id}"]`).waitFor();
    expect(await page.locator('tbody tr').count()).toBe(50);

    await page.locator('.stat-failed').click();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    expect(page.url()).toContain('status=FAILED');
    await page.locator('.stat-failed').click();
    await page.getByRole('searchbox', { name: 'Name' }).fill('page-1');
    await expect.poll(async () => (await page.locator('tbody tr td:first-child').allInnerTexts()).sort()).toEqual(['page-1', ...Array.from({ length: 10 }, (_, i) => `page-1${i}`)].sort());
    await page.getByRole('link', { name: 'Clear filters' }).click();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(50);

    await page.getByRole('link', { name: 'Older jobs' }).click();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(3);
    expect(await page.locator('tbody tr td:first-child').allInnerTexts()).toEqual(['page-2', 'page-1', 'page-0']);
    await page.getByRole('link', { name: 'Newest' }).click();
    await page.locator(`tr[data-job-id="${failing.body.id}"]`).waitFor();
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('batches follow their jobs live; a job is re-run from its page; the owner deletes the finished batch', async () => {
    const op = await s.user('operator');
    const w = await watchedPage(browser, s.url);
    const page = w.page;
    await signIn(page, s.url, op.email, op.password, '#/batches');
    await page.getByText('No batches yet').waitFor();
    const batch = await s.request('POST', '/job-batches', {
      token: op.token,
      body: { name: 'nightly', jobs: [{ name: 'slow', command: ['sleep', '1'] }, { name: 'quick', command: ['true'] }, { name: 'broken', command: ['sh', '-c', 'exit 3'] }] },
    });
    expect(batch.status).toBe(201);
    // A batch created after the page loaded appears with its progress, without reload.
    const row = page.locator(`tr[data-batch-id="${batch.body.id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.locator('.badge').innerText(), { timeout: 20_000 }).toBe('failed');
    expect(await row.locator('.counts').innerText()).toMatch(/2 success\s+1 failed/);
    await row.getByRole('link', { name: 'nightly' }).click();
    await page.getByRole('heading', { name: /nightly/ }).waitFor();
    expect(await page.locator('tbody tr').count()).toBe(3);

    await page.getByRole('link', { name: 'broken' }).click();
    await page.getByRole('button', { name: 'Re-run' }).or(page.getByRole('link', { name: 'Re-run' })).click();
    await expect.poll(() => page.getByLabel('arg 2', { exact: true }).inputValue()).toBe('exit 3');
    expect(await page.getByLabel('program', { exact: true }).inputValue()).toBe('sh');
    expect(await page.getByLabel('Name', { exact: true }).inputValue()).toBe('broken');
    await page.getByRole('button', { name: 'Submit' }).click();
    await page.waitForURL(/#\/jobs\/[^/?]+$/);
    await expect.poll(() => page.locator('h1 .badge').innerText(), { timeout: 20_000 }).toBe('failed');
    await expect.poll(() => page.locator('.facts').innerText()).toMatch(/Exit code\s+3/);

    await page.goto(`${s.url}/#/batches/${batch.body.id}`);
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/#\/batches$/);
    expect((await s.request('GET', `/job-batches/${batch.body.id}`, { token: op.token })).status).toBe(404);
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('a session that ends returns to sign-in and, signed in again, to the page it was on', async () => {
    const op = await s.user('operator');
    const job = await s.request('POST', '/jobs', { token: op.token, body: { name: 'bookmarked', command: ['sleep', '30'] } });
    const w = await watchedPage(browser, s.url);
    const page = w.page;
    await signIn(page, s.url, op.email, op.password, `#/jobs/${job.body.id}`);
    await page.getByRole('heading', { name: /bookmarked/ }).waitFor({ timeout: 10_000 });
    await expect.poll(() => page.locator('.log-phase').innerText(), { timeout: 10_000 }).toBe('live');

    // Revoked on the server (every session of the user ends): the server closes the live socket (4403).
    const token = await page.evaluate(() => sessionStorage.getItem('jobrunner.token'));
    expect((await s.request('POST', '/auth/logout-all', { token })).status).toBeLessThan(300);
    await page.getByText('Your session has ended').waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => sessionStorage.getItem('jobrunner.token'))).toBeNull();
    await page.getByLabel('Email').fill(op.email);
    await page.getByLabel('Password').fill(op.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: /bookmarked/ }).waitFor({ timeout: 10_000 });
    expect(page.url()).toContain(`#/jobs/${job.body.id}`);

    // Expired while away: the stored token is past its expiry when the page loads.
    await page.goto(`${s.url}/#/jobs/${job.body.id}`);
    await page.getByRole('heading', { name: /bookmarked/ }).waitFor({ timeout: 10_000 });
    const fresh = await page.evaluate(() => sessionStorage.getItem('jobrunner.token'));
    await page.evaluate((t) => sessionStorage.setItem('jobrunner.token', t), await expiredToken(s, fresh!));
    await page.reload();
    await page.getByText('Your session has ended').waitFor({ timeout: 10_000 });
    await page.getByLabel('Email').fill(op.email);
    await page.getByLabel('Password').fill(op.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: /bookmarked/ }).waitFor({ timeout: 10_000 });
    expect(page.url()).toContain(`#/jobs/${job.body.id}`);
    await s.request('POST', `/jobs/${job.body.id}/cancel`, { token: s.adminToken });
    // The refused requests (401 from the server) are the only errors the console shows.
    expect(w.problems.filter((p) => !/status of 401/.test(p))).toEqual([]);
    await w.context.close();
  });

  it('works from the keyboard alone: sign in, reach a job, confirm an action', async () => {
    const job = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'keyboard-job', command: ['sleep', '30'] } });
    await waitFor(async () => (await jobStatus(job.body.id)) === 'running');
    const w = await watchedPage(browser, s.url);
    const page = w.page;
    await page.goto(`${s.url}/`);
    await page.getByLabel('Email').waitFor();
    const focused = () => page.evaluate(() => `${document.activeElement?.tagName} ${document.activeElement?.textContent ?? ''}`.trim());
    /** Presses Tab until the focused element's tag and text match. */
    const tabTo = async (re: RegExp) => {
      for (let i = 0; i < 60 && !re.test(await focused()); i++) await page.keyboard.press('Tab');
      expect(await focused()).toMatch(re);
    };
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN_EMAIL);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN_PASSWORD);
    await page.keyboard.press('Enter');
    await page.locator(`tr[data-job-id="${job.body.id}"]`).waitFor();
    await tabTo(/^A keyboard-job$/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /keyboard-job/ }).waitFor();
    await tabTo(/^BUTTON Cancel$/);
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    // The dialog takes the focus on its confirming button.
    expect(await focused()).toBe('BUTTON Cancel job');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('h1 .badge').innerText(), { timeout: 20_000 }).toBe('canceled');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('fits a 360 px wide screen; signing out ends the session', async () => {
    for (let i = 0; i < 12; i++) await s.request('POST', '/jobs', { token: s.adminToken, body: { name: `small-${i}`, command: ['true'] } });
    const w = await watchedPage(browser, s.url, { width: 360, height: 740 });
    const page = w.page;
    await signIn(page, s.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    await page.locator('tbody tr').first().waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await screenshot(page, 'jobs-360px');
    // Reading further down the table: a new job waits behind a button instead of pushing the rows down.
    const count = await page.locator('tbody tr').count();
    await page.setViewportSize({ width: 360, height: 480 });
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    expect(await page.evaluate(() => window.scrollY)).toBeGreaterThan(160);
    const fresh = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'arrived-while-reading', command: ['true'] } });
    const show = page.getByRole('button', { name: '1 new job: show' });
    await show.waitFor({ timeout: 10_000 });
    expect(await page.locator('tbody tr').count()).toBe(count);
    await show.click();
    await expect.poll(() => page.locator('tbody tr').first().getAttribute('data-job-id')).toBe(fresh.body.id);
    expect(await page.locator('tbody tr').count()).toBe(count + 1);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await page.locator('tbody tr a').first().click();
    await page.locator('.log-box').waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await screenshot(page, 'job-360px');

    // Signing out ends the session on the server too.
    const token = await page.evaluate(() => sessionStorage.getItem('jobrunner.token'));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('jobrunner.token'))).toBeNull();
    expect((await s.request('GET', '/users/me', { token })).status).toBe(401);
    expect(w.problems).toEqual([]);
    await w.context.close();
  });
});
