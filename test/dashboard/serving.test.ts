// What the server answers on the dashboard's routes, from a dist/web of the
// test's own making: only the listed files, the right types and caching, the
// CSP on every answer, and a page saying how to build when nothing is built.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP, loadDashboard } from '../../src/server/dashboard.js';

describe('dashboard files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jobrunner-web-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says how to build it when dist/web is missing, and serves nothing else', () => {
    const d = loadDashboard(join(dir, 'missing'));
    expect(d.built).toBe(false);
    const page = d.serve('/', 'GET', undefined)!;
    expect(page.status).toBe(503);
    expect(String(page.body)).toContain('npm run build');
    expect(page.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(d.serve('/web/app.js', 'GET', undefined)!.status).toBe(404);
    expect(d.serve('/docs', 'GET', undefined)).toBeNull();
    expect(d.serve('/graphql', 'GET', undefined)).toBeNull();
  });

  it('serves index.html at / and the listed bundles under /web/, nothing from the URL', () => {
    const web = join(dir, 'web');
    mkdirSync(join(web, 'sub'), { recursive: true });
    writeFileSync(join(web, 'index.html'), '<!doctype html><script type="module" src="/web/app-ABC.js"></script>');
    writeFileSync(join(web, 'app-ABC.js'), 'console.log(1)');
    writeFileSync(join(web, 'app-DEF.css'), 'body{}');
    writeFileSync(join(web, 'notes.txt'), 'not a served type');
    writeFileSync(join(web, 'sub', 'x.js'), 'nested');
    writeFileSync(join(dir, 'secret.js'), 'outside');
    const d = loadDashboard(web);
    expect(d.built).toBe(true);

    const index = d.serve('/', 'GET', undefined)!;
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['cache-control']).toBe('no-cache');
    expect(index.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(d.serve('/', 'GET', index.headers.etag)!.status).toBe(304);
    expect(d.serve('/', 'HEAD', undefined)!.body).toBe('');
    expect(d.serve('/', 'POST', undefined)!.status).toBe(405);

    const js = d.serve('/web/app-ABC.js', 'GET', undefined)!;
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(d.serve('/web/app-DEF.css', 'GET', undefined)!.headers['content-type']).toBe('text/css; charset=utf-8');
    for (const path of ['/web/notes.txt', '/web/sub/x.js', '/web/../secret.js', '/web/index.html', '/web/', '/web/app-ABC.js/']) {
      expect(d.serve(path, 'GET', undefined)!.status, path).toBe(404);
    }
  });
});
