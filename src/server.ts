// buildApp(): database, services, GraphQL (HTTP), REST and docs on one
// node:http server. Start and stop are explicit so tests and the CLI share it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getOperationAST } from 'graphql';
import { createYoga, type Plugin } from 'graphql-yoga';
import { useAPQ } from '@graphql-yoga/plugin-apq';
import { resolveSecret, createTokenIssuer } from './auth/tokens.js';
import { verifyPassword } from './auth/passwords.js';
import { DEFAULT_ADMIN_PASSWORD, type Config } from './config.js';
import { retryTransient } from './db/retry.js';
import { openDatabase, type Database } from './db/client.js';
import { secureDataDir } from './db/fileModes.js';
import { toGraphQLError } from './graphql/errors.js';
import { schema } from './graphql/schema.js';
import { useSharedSubscriptionEvents } from './graphql/sharedEvents.js';
import { VIEWER_INDEPENDENT_SUBSCRIPTIONS } from './graphql/types/subscriptions.js';
import { createLogger, type Logger } from './logger.js';
import { restError } from './rest/errorMapping.js';
import { buildOpenApi } from './rest/openapi.js';
import { createLogStream } from './rest/logStream.js';
import { createRouter } from './rest/router.js';
import { routes } from './rest/routes.js';
import { staticAsset, graphiqlHtml, playgroundHtml, swaggerHtml } from './server/assets.js';
import { loadDashboard } from './server/dashboard.js';
import { BodyTooLarge, MAX_NESTING, nestingDepth, readBody } from './server/body.js';
import { corsHeaders, preflightHeaders, useSimpleRequestRefusal } from './server/cors.js';
import { useQueryLimits, type Budget } from './server/graphqlLimits.js';
import { clientAddressOf } from './server/clientAddress.js';
import { createContextFactory } from './server/contextFactory.js';
import { createGraphQLWebSocket, type GraphQLWebSocket } from './server/websocket.js';
import { createServices, type Services } from './services/index.js';
import { createDefaultLimitReader } from './services/limits.js';
import { createLocalBus, type EventBus } from './events/bus.js';
import { createRedisBus } from './events/redisBus.js';
import { createJobControl } from './engine/control.js';
import { guardBackends } from './engine/firewall.js';
import { helperIsolation, networkReport } from './engine/isolation.js';
import { createWorker, type Worker } from './engine/worker.js';
import { startSpawner } from './engine/spawnerClient.js';
import { operationNames, useGraphQLMetrics } from './metrics/graphql.js';
import { answerLive, createMetricsEndpoint, createRequestObserver, startMetricsListener, type MetricsListener } from './metrics/http.js';
import { instrumentBus, instrumentServices, observeLog, workerObserver } from './metrics/observers.js';
import { createMetrics, type Metrics } from './metrics/registry.js';
import { createQueueReader, registerStateGauges } from './metrics/state.js';
import { VERSION } from './version.js';

export interface AppOptions {
  log?: Logger;
  /** Run jobs in this process (default true); false for `serve --no-worker`. */
  worker?: boolean;
  /** Serve HTTP (default true); false for the `worker` role. */
  http?: boolean;
}

export interface App {
  readonly config: Config;
  readonly db: Database;
  readonly services: Services;
  readonly log: Logger;
  readonly bus: EventBus;
  readonly worker: Worker | null;
  /** The Prometheus registry and series; null with METRICS=off. */
  readonly metrics: Metrics | null;
  /** Listens on config.port (0 = ephemeral); resolves with the base URL ('' without HTTP). */
  start(): Promise<string>;
  /** Stops claiming, lets running jobs finish for graceMs (default SHUTDOWN_GRACE_SECONDS), then closes. */
  stop(graceMs?: number): Promise<void>;
}

interface ServerContext {
  clientAddress: string;
  /** Read by the complexity costs of log streams (graphql/builder.ts). */
  maxLogBytes: number;
  budget: Budget;
}

/** Operations one batched HTTP request may hold; they share one complexity budget. */
const BATCH_LIMIT = 5;

const DEFAULT_QUERY = '{\n  health {\n    status\n    version\n  }\n}\n';

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

/**
 * A subscription refused before it starts (not authenticated, not found, …)
 * is an ExecutionResult with errors and no data; yoga would answer it with
 * 500 because its errors wrap domain errors. Errors the API names (every code
 * but INTERNAL_SERVER_ERROR) are answers, not failures: 200, the error in the
 * body or event stream, as graphql-sse and GraphiQL expect.
 */
function useDomainErrorStatus(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || Symbol.asyncIterator in result || 'data' in result || !result.errors?.length) return;
      if (result.extensions?.http?.status || result.errors.some((e) => e.extensions?.http)) return;
      if (result.errors.every((e) => typeof e.extensions?.code === 'string' && e.extensions.code !== 'INTERNAL_SERVER_ERROR')) {
        setResult({ ...result, extensions: { ...result.extensions, http: { status: 200 } } });
      }
    },
  };
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<App> {
  const metrics = config.metrics.enabled ? createMetrics() : null;
  const baseLog = options.log ?? createLogger(config.logLevel, config.log);
  const log = metrics ? observeLog(baseLog, metrics) : baseLog;
  secureDataDir(config, log);
  const tokens = createTokenIssuer(resolveSecret(config.jwtSecret, config.dataDir), config.jwtTtlSeconds);
  // Before any job runs: jobs' uids are refused the database and Redis.
  const backendGuard = options.worker === false ? null : await guardBackends(config, log);
  if (backendGuard && !backendGuard.active && config.jobNetwork === 'host') log.warn(backendGuard.detail);
  const db = await openDatabase(config.database, (msg) => log.info(msg));
  // Waits for Redis at start-up, retrying and saying so (events/redisBus.ts).
  const redisBus = config.redisUrl
    ? await createRedisBus(config.redisUrl, log, { prefix: config.redisPrefix, onError: metrics ? () => metrics.redisErrors.inc() : undefined })
    : null;
  const rawBus: EventBus = redisBus ?? createLocalBus();
  const bus = metrics ? instrumentBus(rawBus, metrics) : rawBus;
  if (metrics) bus.onReconnect(() => metrics.redisReconnects.inc());
  const deps = { db, config, log };
  // The worker reads the default limit; the services reach the worker through JobControl.
  const defaultLimit = createDefaultLimitReader(deps, bus);
  const spawner = options.worker === false ? null : await startSpawner(log, config.spawner, { isolation: helperIsolation(config) });
  const worker = spawner
    ? createWorker(db, config, bus, log, {
        defaultLimit,
        launcher: spawner.launcher,
        renewHelperLease: (ms) => spawner.renewLease(ms),
        cgroups: spawner,
        observer: metrics ? workerObserver(metrics) : undefined,
      })
    : null;
  // A worker cut off from the bus learns of a stop at its next lease renewal, then has the kill grace.
  const control = createJobControl(db, bus, worker, config.heartbeatMs + config.killGraceMs + 5_000);
  const services = createServices(deps, tokens, {
    bus,
    defaultLimit,
    control,
    pingRedis: redisBus ? () => redisBus.ping() : null,
    version: VERSION,
    isolation: () => spawner && { ...spawner.isolation, network: networkReport(config, spawner.isolation.level, backendGuard) },
  });
  if (metrics) instrumentServices(services, metrics);

  await retryTransient(() => services.users.bootstrapAdmin(config.adminEmail, config.adminPassword));
  const admin = await retryTransient(() => db.prisma.user.findUnique({ where: { email: config.adminEmail } }));
  if (admin && (await verifyPassword(admin.passwordHash, DEFAULT_ADMIN_PASSWORD))) {
    log.warn(`the admin ${admin.email} still uses the default password; change it with PATCH ${config.apiPrefix}/users/${admin.id}`);
  }

  const contextFor = createContextFactory(services, db, log);
  const yoga = createYoga<ServerContext>({
    schema,
    graphqlEndpoint: '/graphql',
    context: ({ request, clientAddress }) => contextFor(request.headers.get('authorization'), clientAddress),
    maskedErrors: { maskError: (error) => toGraphQLError(error, log) },
    // GraphiQL subscribes over SSE (GET, Accept: text/event-stream) with the Headers tab's Authorization.
    graphiql: { title: 'Job Runner GraphQL', defaultQuery: DEFAULT_QUERY, subscriptionsProtocol: 'GRAPHQL_SSE' },
    renderGraphiQL: (opts) => graphiqlHtml(opts as Record<string, unknown>),
    landingPage: false,
    logging: false,
    // Answered in handle() before yoga, for /graphql alone.
    cors: false,
    batching: { limit: BATCH_LIMIT },
    plugins: [
      useSimpleRequestRefusal(),
      useDomainErrorStatus(),
      useQueryLimits(schema, config.maxLogBytes),
      useAPQ(),
      useSharedSubscriptionEvents(VIEWER_INDEPENDENT_SUBSCRIPTIONS),
      // The REST routes' operation names are always labels of their own; other clients' names are capped.
      ...(metrics ? [useGraphQLMetrics(metrics, operationNames(routes.map((r) => getOperationAST(r.document)?.name?.value ?? '').filter(Boolean)))] : []),
    ],
  });

  const router = createRouter(schema, routes, log, config);
  const openapi = JSON.stringify(buildOpenApi(routes, config.apiPrefix, VERSION));
  const dashboard = loadDashboard();
  if (!dashboard.built) log.warn('the web dashboard is not built (dist/web is missing): run npm run build');
  const prefix = config.apiPrefix;
  const logStream = createLogStream({ prefix, routes, schema, live: services.live, contextFor, log });
  const serveMetrics = metrics ? createMetricsEndpoint(metrics, config.metrics, 'api') : null;
  const observeRequest = metrics ? createRequestObserver(metrics) : null;
  const restStreams = metrics?.subscribers.labels('rest-stream');

  /** The route template of a request, for metrics labels: never the raw path. */
  function routeOf(method: string, path: string): string {
    if (['/graphql', '/metrics', '/livez', '/playground', '/docs', '/'].includes(path) || path === `${prefix}/openapi.json`) return path;
    if (logStream.match(path) !== null) return `${prefix}/jobs/{id}/logs/stream`;
    if (path === prefix || path.startsWith(prefix + '/')) {
      const found = router.match(method === 'HEAD' ? 'GET' : method, path.slice(prefix.length) || '/');
      return found && 'route' in found ? prefix + found.route.path : `${prefix}/other`;
    }
    return staticAsset(path) ? 'static' : 'other';
  }

  async function handleGraphQL(req: IncomingMessage, res: ServerResponse, url: URL, clientAddress: string) {
    const cors = corsHeaders(req.headers.origin, config.corsOrigins);
    if (req.method === 'OPTIONS') return void res.writeHead(204, { ...cors, ...preflightHeaders(req.headers.origin) }).end();
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req, config.maxBodyBytes);
    // Variables and extensions are JSON that yoga parses and graphql-js walks recursively.
    const json = body ? body.toString('utf8') : `${url.searchParams.get('variables') ?? ''}${url.searchParams.get('extensions') ?? ''}`;
    if (nestingDepth(json, MAX_NESTING) > MAX_NESTING) {
      const message = `The request's JSON nests more than ${MAX_NESTING} levels deep`;
      return send(res, 400, { errors: [{ message, extensions: { code: 'BAD_USER_INPUT' } }] }, cors);
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const serverContext: ServerContext = { clientAddress, maxLogBytes: config.maxLogBytes, budget: { spent: 0 } };
    const response = await yoga.fetch(url, { method: req.method, headers, body: body && new Uint8Array(body) }, serverContext);
    res.writeHead(response.status, { ...Object.fromEntries(response.headers), ...cors });
    if (response.body) for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const clientAddress = clientAddressOf(req, config.trustProxy);
    observeRequest?.(req, res, () => routeOf(req.method ?? 'GET', path));
    try {
      if (path === '/graphql') return await handleGraphQL(req, res, url, clientAddress);
      if (path === '/livez') return answerLive(res);
      if (path === '/metrics' && serveMetrics) return await serveMetrics(req, res);
      if (path === `${prefix}/openapi.json`) {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(openapi);
      }
      const streamJobId = logStream.match(path);
      if (streamJobId !== null) {
        restStreams?.inc();
        try {
          return await logStream.handle(req, res, streamJobId, clientAddress);
        } finally {
          restStreams?.dec();
        }
      }
      if (path === prefix || path.startsWith(prefix + '/')) {
        const out = await router.handle({
          method: req.method ?? 'GET',
          path: path.slice(prefix.length) || '/',
          query: url.searchParams,
          contentType: req.headers['content-type'],
          readBody: () => readBody(req, config.maxBodyBytes),
          context: () => contextFor(req.headers.authorization, clientAddress),
        });
        return send(res, out.status, out.body, out.headers);
      }
      if (path === '/playground') {
        return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(playgroundHtml('/graphql', DEFAULT_QUERY));
      }
      if (path === '/docs/') {
        return void res.writeHead(308, { location: '/docs' }).end();
      }
      if (path === '/docs') {
        return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(swaggerHtml(`${prefix}/openapi.json`));
      }
      const asset = staticAsset(path);
      if (asset) {
        return void res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'public, max-age=86400' }).end(asset.body);
      }
      const page = dashboard.serve(path, req.method ?? 'GET', req.headers['if-none-match']);
      if (page) return void res.writeHead(page.status, page.headers).end(page.body);
      return send(res, 404, { detail: 'Not Found' });
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        return send(res, 413, { detail: `Request body exceeds the limit of ${config.maxBodyBytes} bytes` }, { connection: 'close' });
      }
      // 503 when the database is not answering, else 500 (logged either way).
      const answer = restError(toGraphQLError(err, log.scope({ method: req.method, path })));
      if (!res.headersSent) send(res, answer.status, answer.body, answer.headers);
      else res.destroy();
    }
  }

  let server: Server | null = null;
  let sockets: GraphQLWebSocket | null = null;
  let stopPruning: (() => void) | null = null;
  let metricsListener: MetricsListener | null = null;
  if (metrics) {
    registerStateGauges(metrics, {
      queue: createQueueReader(db),
      redisUp: redisBus ? () => redisBus.isUp() : null,
      websockets: options.http === false ? null : () => sockets?.connectionsByProtocol() ?? {},
    });
  }
  let stopRetention: (() => void) | null = null;

  return {
    config,
    db,
    services,
    log,
    bus,
    worker,
    metrics,
    async start() {
      await worker?.start();
      stopPruning = services.audit.schedulePrune();
      stopRetention = services.retention.schedule();
      const metricsPort = config.metrics.port;
      if (metrics && metricsPort !== null) {
        metricsListener = await startMetricsListener(metrics, { ...config.metrics, port: metricsPort }, () => services.health.check());
        log.info('metrics listening', { url: `${metricsListener.url}/metrics` });
      }
      if (options.http === false) return '';
      server = createServer((req, res) => void handle(req, res));
      server.headersTimeout = 30_000;
      server.requestTimeout = 120_000;
      // GraphQL over WebSocket on /graphql (same port); any other upgrade is a 404.
      const rateLimited = metrics?.rateLimited;
      sockets = createGraphQLWebSocket(yoga, services, log, {
        maxPayloadBytes: config.maxBodyBytes,
        trustProxy: config.trustProxy,
        onRateLimited: (limit) => rateLimited?.labels(limit).inc(),
      });
      server.on('upgrade', sockets.handleUpgrade);
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(config.port, config.host, () => resolve());
      });
      const { port } = server.address() as AddressInfo;
      const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      log.info('listening', { url, graphql: `${url}/graphql`, playground: `${url}/playground`, docs: `${url}/docs`, database: config.database.provider });
      return url;
    },
    async stop(graceMs = config.shutdownGraceMs) {
      stopPruning?.();
      stopRetention?.();
      await worker?.shutdown(graceMs);
      await spawner?.close();
      await sockets?.close();
      sockets = null;
      await metricsListener?.close();
      metricsListener = null;
      if (server) {
        const s = server;
        server = null;
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        });
      }
      await bus.close();
      await db.close();
    },
  };
}
