// Small helpers shared by the foundation suites (not a test file itself).
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Route } from '../../src/rest/route.js';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Parsed JSON when the response says it is JSON, else the text. */
  body: any;
}

/**
 * One HTTP request with node:http, so a test can pick the client address
 * (any 127.x.y.z reaches a server listening on 127.0.0.1) and send chunked
 * bodies. Login failures are rate limited per client address, so suites that
 * provoke many of them use their own address and leave the others alone.
 */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; localAddress?: string; chunked?: boolean } = {},
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined && !opts.chunked) headers['content-length'] = Buffer.byteLength(opts.body);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', headers, localAddress: opts.localAddress, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('application/json') && text) body = JSON.parse(text);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) {
      if (opts.chunked) {
        const buf = Buffer.from(opts.body);
        for (let i = 0; i < buf.length; i += 512) req.write(buf.subarray(i, i + 512));
      } else {
        req.write(opts.body);
      }
    }
    req.end();
  });
}

/** POST {api}/auth/token with a form body built from `fields` (or a raw string). */
export function tokenRequest(api: string, fields: Record<string, string> | string, localAddress?: string): Promise<RawResponse> {
  return httpRequest(`${api}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: typeof fields === 'string' ? fields : new URLSearchParams(fields).toString(),
    localAddress,
  });
}

/** The route's path with every `{param}` replaced by `id` (a fresh random UUID by default). */
export function concretePath(route: Route, id: string = randomUUID()): string {
  return route.path.replace(/\{\w+\}/g, id);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const randomSuffix = () => Math.random().toString(36).slice(2, 10);

export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export const USER_READ_KEYS = ['created_at', 'email', 'id', 'is_active', 'max_concurrent_jobs', 'role'];
