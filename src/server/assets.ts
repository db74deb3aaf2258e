// Local copies of the Swagger UI, GraphiQL and GraphQL Playground assets (no
// internet at run time). Only the listed files are served: no path from the URL reaches the disk.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const swaggerDir = dirname(require.resolve('swagger-ui-dist/package.json'));
const graphiqlDir = join(dirname(require.resolve('@graphql-yoga/graphiql/package.json')), 'dist');
// The prebuilt bundle of graphql-playground-react 1.7.28 (see assets/playground/README.md).
const playgroundDir = fileURLToPath(new URL('../../assets/playground/', import.meta.url));

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png' };

const FILES: Record<string, string> = {
  '/docs/assets/swagger-ui.css': join(swaggerDir, 'swagger-ui.css'),
  '/docs/assets/swagger-ui-bundle.js': join(swaggerDir, 'swagger-ui-bundle.js'),
  '/docs/assets/swagger-ui-standalone-preset.js': join(swaggerDir, 'swagger-ui-standalone-preset.js'),
  '/docs/assets/favicon-32x32.png': join(swaggerDir, 'favicon-32x32.png'),
  '/favicon.ico': join(swaggerDir, 'favicon-32x32.png'),
  '/graphiql/assets/graphiql.css': join(graphiqlDir, 'graphiql.css'),
  '/graphiql/assets/yoga-graphiql.umd.js': join(graphiqlDir, 'yoga-graphiql.umd.js'),
  '/graphiql/assets/editor.worker.js': join(graphiqlDir, 'monacoeditorwork/editor.worker.bundle.js'),
  '/graphiql/assets/json.worker.js': join(graphiqlDir, 'monacoeditorwork/json.worker.bundle.js'),
  '/graphiql/assets/graphql.worker.js': join(graphiqlDir, 'monacoeditorwork/graphql.worker..bundle.js'),
  '/playground/assets/middleware.js': join(playgroundDir, 'middleware.js'),
  '/playground/assets/middleware.css': join(playgroundDir, 'middleware.css'),
  '/playground/assets/favicon.png': join(playgroundDir, 'favicon.png'),
};

const cache = new Map<string, Buffer>();

export function staticAsset(path: string): { body: Buffer; type: string } | null {
  const file = FILES[path];
  if (!file) return null;
  let body = cache.get(path);
  if (!body) cache.set(path, (body = readFileSync(file)));
  return { body, type: TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream' };
}

const escapeJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

export function swaggerHtml(openapiUrl: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Job Runner API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"><link rel="icon" href="/docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: ${escapeJson(openapiUrl)}, dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: true });</script>
</body></html>`;
}

/**
 * yoga's GraphiQL page, with every asset from this server instead of a CDN.
 * Its renderer shows `query` (else its welcome comment) and ignores
 * `defaultQuery`, so the default query is passed as the query.
 */
export function graphiqlHtml(options: Record<string, unknown>): string {
  options = { ...options, query: options.query ?? options.defaultQuery };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Job Runner GraphQL</title>
<link rel="stylesheet" href="/graphiql/assets/graphiql.css"><link rel="icon" href="/favicon.ico"></head>
<body id="body" class="no-focus-outline"><div id="root">Loading GraphiQL…</div>
<script>
self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: function (_id, label) {
  return { editorWorkerService: '/graphiql/assets/editor.worker.js', json: '/graphiql/assets/json.worker.js', graphql: '/graphiql/assets/graphql.worker.js' }[label] || '/graphiql/assets/editor.worker.js';
} };
</script>
<script src="/graphiql/assets/yoga-graphiql.umd.js"></script>
<script>YogaGraphiQL.renderYogaGraphiQL(document.getElementById('root'), ${escapeJson(options)});</script>
</body></html>`;
}

/**
 * GraphQL Playground with this server's endpoint and its WebSocket (legacy
 * `graphql-ws` subprotocol) preset. Fonts fall back to local ones: nothing is
 * fetched from elsewhere.
 */
export function playgroundHtml(endpoint: string, query: string): string {
  const settings = { 'request.credentials': 'omit', 'schema.polling.enable': false, 'editor.theme': 'dark' };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Job Runner GraphQL Playground</title>
<meta name="viewport" content="user-scalable=no, initial-scale=1.0, minimum-scale=1.0, maximum-scale=1.0, minimal-ui">
<link rel="stylesheet" href="/playground/assets/middleware.css"><link rel="icon" href="/playground/assets/favicon.png"></head>
<body><div id="root">Loading GraphQL Playground…</div>
<script src="/playground/assets/middleware.js"></script>
<script>
(function () {
  var endpoint = new URL(${escapeJson(endpoint)}, location.href);
  var socket = new URL(endpoint.href);
  socket.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  GraphQLPlayground.init(document.getElementById('root'), {
    endpoint: endpoint.href,
    subscriptionEndpoint: socket.href,
    settings: ${escapeJson(settings)},
    tabs: [{ endpoint: endpoint.href, query: ${escapeJson(query)} }],
  });
})();
</script>
</body></html>`;
}
