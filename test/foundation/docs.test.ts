// The OpenAPI document (every route of the seed reference, with bodies and
// the bearer scheme) and, in a real browser, Swagger UI and GraphiQL served
// entirely by this server.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../src/rest/routes.js';
import { launchBrowser } from '../helpers/browser.js';
import { PROVIDERS } from '../helpers/db.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PREFIX = '/api/v1';

/** Every route of the seed API reference (plus the contract's job cancel), as "METHOD /path". */
const SEED_ROUTES = [
  'POST /auth/token',
  'GET /health',
  'POST /jobs',
  'GET /jobs',
  'GET /jobs/stats',
  'GET /jobs/{id}',
  'GET /jobs/{id}/logs',
  'POST /jobs/{id}/force-complete',
  'DELETE /jobs/{id}/purge',
  'POST /jobs/{id}/cancel',
  'GET /admin/limits',
  'POST /admin/limits/global',
  'POST /admin/limits/users/{id}',
  'POST /job-batches',
  'GET /job-batches',
  'GET /job-batches/{id}',
  'POST /job-batches/{id}/cancel',
  'POST /job-batches/{id}/force-complete',
  'DELETE /job-batches/{id}',
  'POST /users',
  'GET /users',
  'GET /users/{id}',
  'PATCH /users/{id}',
];

/** Seed routes that take a request body. */
const SEED_BODY_ROUTES = [
  'POST /auth/token',
  'POST /jobs',
  'POST /jobs/{id}/force-complete',
  'POST /admin/limits/global',
  'POST /admin/limits/users/{id}',
  'POST /job-batches',
  'POST /job-batches/{id}/force-complete',
  'POST /users',
  'PATCH /users/{id}',
];

interface Operation {
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
  security?: Record<string, string[]>[];
  responses?: Record<string, unknown>;
}
type OpenApi = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, { type: string; scheme?: string; flows?: { password?: { tokenUrl?: string } } }> };
  security?: Record<string, string[]>[];
};

const operation = (doc: OpenApi, key: string): Operation | undefined => {
  const [method, path] = key.split(' ') as [string, string];
  return doc.paths[PREFIX + path]?.[method.toLowerCase()];
};

describe.each(PROVIDERS)('API documentation on %s', (provider) => {
  let s: TestServer;
  let doc: OpenApi;

  beforeAll(async () => {
    s = await startServer(provider);
    const res = await fetch(`${s.api}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    doc = (await res.json()) as OpenApi;
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('GET /api/v1/openapi.json is OpenAPI 3.1 with a bearer security scheme that protected routes use', () => {
    expect(doc.openapi.startsWith('3.1')).toBe(true);
    const schemes = Object.entries(doc.components?.securitySchemes ?? {});
    const bearer = schemes.filter(([, sc]) => (sc.type === 'http' && sc.scheme?.toLowerCase() === 'bearer') || (sc.type === 'oauth2' && sc.flows?.password?.tokenUrl?.endsWith('/auth/token')));
    expect(bearer.length, JSON.stringify(doc.components?.securitySchemes)).toBeGreaterThan(0);
    const bearerNames = new Set(bearer.map(([name]) => name));
    const usesBearer = (op: Operation | undefined) => (op?.security ?? doc.security ?? []).some((req) => Object.keys(req).some((k) => bearerNames.has(k)));
    for (const key of ['GET /users', 'POST /users', 'GET /admin/limits']) expect(usesBearer(operation(doc, key)), key).toBe(true);
    expect(usesBearer(operation(doc, 'POST /auth/token')), 'the token route itself needs no token').toBe(false);
  });

  it('lists every route of the seed API reference with its method', () => {
    const missing = SEED_ROUTES.filter((key) => !operation(doc, key));
    expect(missing).toEqual([]);
  });

  it('documents every route of the route table, with a request body schema where the route takes a body', () => {
    const problems: string[] = [];
    const bodyRoutes = new Set([...SEED_BODY_ROUTES, ...routes.filter((r) => r.body).map((r) => `${r.method} ${r.path}`)]);
    for (const r of routes) {
      if (!operation(doc, `${r.method} ${r.path}`)) problems.push(`${r.method} ${r.path}: not in the document`);
    }
    for (const key of bodyRoutes) {
      const op = operation(doc, key);
      if (!op) continue; // reported by the seed-route test above
      const schemas = Object.values(op.requestBody?.content ?? {}).map((c) => c.schema);
      if (!schemas.length || schemas.some((sc) => !sc || (!sc.properties && !sc.type && !sc.$ref && !sc.anyOf && !sc.oneOf))) {
        problems.push(`${key}: no request body schema`);
      }
    }
    expect(problems).toEqual([]);
    const token = operation(doc, 'POST /auth/token')!;
    expect(Object.keys(token.requestBody!.content!)).toEqual(['application/x-www-form-urlencoded']);
    const user = operation(doc, 'POST /users')!.requestBody!.content!['application/json']!.schema as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(user.properties)).toEqual(expect.arrayContaining(['email', 'password', 'role']));
    expect([...user.required].sort()).toEqual(['email', 'password', 'role']);
  });

  if (provider === 'sqlite') {
    describe('in a browser', () => {
      let browser: Browser;
      const consoleErrors: string[] = [];
      const opened: string[] = [];

      beforeAll(async () => {
        browser = await launchBrowser();
      }, 180_000);
      afterAll(async () => {
        await browser?.close();
      });

      /** Opens `path` as a browser navigation, recording every request the page makes. */
      async function open(path: string) {
        const page = await browser.newPage();
        const origin = new URL(s.url).origin;
        const problems: string[] = [];
        const requested: string[] = [];
        page.on('request', (r) => {
          requested.push(r.url());
          if (!/^(data|blob):/.test(r.url()) && new URL(r.url()).origin !== origin) problems.push(`request to another host: ${r.url()}`);
        });
        page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} (${r.failure()?.errorText})`));
        page.on('response', (r) => {
          if (r.status() >= 400) problems.push(`${r.status()}: ${r.url()}`);
        });
        page.on('pageerror', (e) => problems.push(`uncaught error: ${e.message}`));
        page.on('console', (m) => {
          if (m.type() === 'error') consoleErrors.push(`${path}: ${m.text()} ${m.location().url}`);
        });
        opened.push(path);
        const response = await page.goto(`${s.url}${path}`, { waitUntil: 'load' });
        expect(response?.status()).toBe(200);
        expect(response?.headers()['content-type']).toContain('text/html');
        return { page, problems, requested };
      }

      it('Swagger UI at /docs lists the operations, with every asset from this server', async () => {
        const { page, problems, requested } = await open('/docs');
        await page.getByText(`${PREFIX}/auth/token`, { exact: true }).first().waitFor({ state: 'visible', timeout: 20_000 });
        await page.getByText(`${PREFIX}/users/{id}`, { exact: true }).first().waitFor({ state: 'visible', timeout: 5_000 });
        await page.getByRole('button', { name: /authorize/i }).first().waitFor({ state: 'visible', timeout: 5_000 });
        expect(requested).toContain(`${s.api}/openapi.json`);
        expect(problems).toEqual([]);
        await page.close();
      });

      it('GraphiQL at /graphql renders its editor, loads the schema and runs a query, with every asset from this server', async () => {
        const { page, problems, requested } = await open('/graphql');
        await page.locator('.graphiql-container').first().waitFor({ state: 'visible', timeout: 20_000 });
        const editor = page.locator('.graphiql-query-editor .monaco-editor').first();
        await editor.waitFor({ state: 'visible', timeout: 20_000 });
        // Type a query (insertText: no bracket auto-closing) and run it with the run button.
        await editor.click();
        await page.keyboard.press('Control+A');
        await page.keyboard.press('Delete');
        await page.keyboard.insertText('{ health { status version } }');
        await page.locator('.graphiql-execute-button').first().click();
        await expect.poll(() => page.locator('.graphiql-response').first().innerText(), { timeout: 20_000 }).toContain('"ok"');
        const posts = requested.filter((u) => u === `${s.url}/graphql`);
        expect(posts.length, 'the page, the introspection query and the typed query').toBeGreaterThanOrEqual(3);
        expect(problems).toEqual([]);
        await page.close();
      });

      it('neither page logs a failed resource load in the browser console', () => {
        // Collected while the two tests above had the pages open (e.g. the browser's own /favicon.ico request).
        expect(opened).toEqual(['/docs', '/graphql']);
        expect(consoleErrors).toEqual([]);
      });
    });
  }
});
