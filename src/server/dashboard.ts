// The web dashboard: the files scripts/build-web.mjs wrote to dist/web/,
// listed and read once at start-up. Only those names are served (no path
// from the URL reaches the disk): index.html at `/` (no-cache, so a new
// build is picked up at once) and the content-hashed bundles under /web/
// (immutable). Every answer carries a strict Content-Security-Policy: no
// inline script or style, no eval, connections (HTTP and WebSocket) only to
// this origin.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/web beside dist/ (from src/server or dist/server alike). */
const DASHBOARD_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/** 'self' covers ws:/wss: to this origin (CSP Level 3), which the subscriptions use. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const SECURITY_HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

interface Entry {
  body: Buffer;
  headers: Record<string, string>;
}

export interface DashboardAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

export interface Dashboard {
  /** The answer for `path`, or null when it is not a dashboard route. */
  serve(path: string, method: string, ifNoneMatch: string | undefined): DashboardAnswer | null;
  /** False when dist/web was not built: `/` then says how to build it. */
  readonly built: boolean;
}

function entry(file: string, cache: string): Entry {
  const body = readFileSync(file);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return {
    body,
    headers: { ...SECURITY_HEADERS, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': cache, etag, 'content-length': String(body.length) },
  };
}

/** Reads dist/web once: `/` is index.html, `/web/<name>` each hashed bundle. */
export function loadDashboard(dir = DASHBOARD_DIR): Dashboard {
  const files = new Map<string, Entry>();
  const index = join(dir, 'index.html');
  if (existsSync(index)) {
    files.set('/', entry(index, 'no-cache'));
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      if (name === 'index.html' || !(extname(name) in TYPES)) continue;
      try {
        if (statSync(file).isFile()) files.set(`/web/${name}`, entry(file, 'public, max-age=31536000, immutable'));
      } catch {
        // Removed by a concurrent rebuild: that build's index.html does not name it.
      }
    }
  }
  const built = files.size > 0;
  return {
    built,
    serve(path, method, ifNoneMatch) {
      const isIndex = path === '/' || path === '/index.html';
      if (!isIndex && !path.startsWith('/web/')) return null;
      const found = files.get(isIndex ? '/' : path);
      if (!found) {
        if (isIndex && !built) {
          const body = 'The dashboard is not built: run `npm run build` (or `node scripts/build-web.mjs`) and restart. The API is documented at /docs.\n';
          return { status: 503, headers: { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body };
        }
        return { status: 404, headers: { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' }, body: 'Not Found\n' };
      }
      if (method !== 'GET' && method !== 'HEAD') {
        return { status: 405, headers: { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, body: 'Method Not Allowed\n' };
      }
      if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === found.headers.etag)) {
        const { 'content-length': _length, ...headers } = found.headers;
        return { status: 304, headers, body: '' };
      }
      return { status: 200, headers: found.headers, body: method === 'HEAD' ? '' : found.body };
    },
  };
}
