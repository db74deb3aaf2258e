// Serving metrics: /metrics on the API port (with METRICS_TOKEN, or
// METRICS_PUBLIC=on) and a separate listener (METRICS_PORT) for /metrics,
// /health and /livez, the only HTTP a worker process has. Also the request
// counter/histogram every HTTP answer passes through.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsConfig } from '../config.js';
import { labelled, type Metrics } from './registry.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * Counts each request once its response has ended (or its connection
 * closed), under the route template `routeOf` names: never the raw path.
 */
export function createRequestObserver(metrics: Metrics) {
  const requests = labelled((method, route, status) => metrics.httpRequests.labels(method, route, status));
  const durations = labelled((method, route) => metrics.httpDuration.labels(method, route));
  return (req: IncomingMessage, res: ServerResponse, routeOf: () => string): void => {
    const startedAt = performance.now();
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      const method = METHODS.has(req.method ?? '') ? req.method! : 'other';
      const route = routeOf();
      requests(method, route, String(res.statusCode)).inc();
      durations(method, route).observe((performance.now() - startedAt) / 1000);
    };
    res.once('finish', end);
    res.once('close', end);
  };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether the request carries METRICS_TOKEN as its bearer token (compared in constant time). */
function hasToken(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

/**
 * Answers GET /metrics. `where` says which port: on the API port metrics are
 * served only with a token or when made public on purpose; the separate
 * listener serves them (with the token when one is set).
 */
export function createMetricsEndpoint(metrics: Metrics, config: MetricsConfig, where: 'api' | 'listener') {
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (config.token !== null && !hasToken(req, config.token)) {
      return json(res, 401, { detail: 'Metrics need the bearer token set in METRICS_TOKEN (Prometheus: authorization: { credentials: <token> })' }, { 'www-authenticate': 'Bearer realm="metrics"' });
    }
    if (config.token === null && where === 'api' && !config.public) {
      return json(res, 404, { detail: 'Metrics are not served on the API port without protection: set METRICS_TOKEN (scrape with it as a bearer token), serve them on a private address with METRICS_PORT, or set METRICS_PUBLIC=on' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { detail: 'Method Not Allowed' }, { allow: 'GET, HEAD' });
    const text = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) }).end(req.method === 'HEAD' ? undefined : text);
  };
}

/** Liveness: the process answers; nothing else is asked (a database outage is readiness, not a reason to restart). */
export function answerLive(res: ServerResponse): void {
  json(res, 200, { status: 'alive' });
}

export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/** The METRICS_PORT listener: /metrics, /health (readiness, as the API's) and /livez. */
export async function startMetricsListener(
  metrics: Metrics,
  config: MetricsConfig & { port: number },
  readiness: () => Promise<{ status: string }>,
): Promise<MetricsListener> {
  const serveMetrics = createMetricsEndpoint(metrics, config, 'listener');
  const observeRequest = createRequestObserver(metrics);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    observeRequest(req, res, () => (['/metrics', '/health', '/livez'].includes(path) ? path : 'other'));
    const fail = () => {
      if (!res.headersSent) json(res, 500, { detail: 'Internal Server Error' });
      else res.destroy();
    };
    if (path === '/metrics') return void serveMetrics(req, res).catch(fail);
    if (path === '/livez') return answerLive(res);
    if (path === '/health') {
      return void readiness().then((report) => json(res, report.status === 'ok' ? 200 : 503, report), fail);
    }
    json(res, 404, { detail: 'Not Found: this listener serves /metrics, /health and /livez' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
