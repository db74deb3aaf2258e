// Browser rules for /graphql. Authentication is a bearer header only: no
// cookie or other ambient credential exists, so a cross-site request runs as
// anonymous and cross-site request forgery has nothing to borrow. What stays
// refused is the one request shape a foreign page can send without a CORS
// preflight and without script: a POST whose Content-Type is a form or plain
// text. Every GraphQL client sends JSON (a preflighted type) or uses GET,
// and yoga runs only queries and subscriptions over GET.
import { createGraphQLError, type Plugin } from 'graphql-yoga';

const SIMPLE_CONTENT_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'];

export function useSimpleRequestRefusal(): Plugin {
  return {
    onRequestParse({ request }) {
      if (request.method !== 'POST') return;
      const type = (request.headers.get('content-type') ?? '').toLowerCase();
      if (type && !SIMPLE_CONTENT_TYPES.some((t) => type.startsWith(t))) return;
      throw createGraphQLError('POST /graphql needs Content-Type: application/json (or application/graphql-response+json); form and text bodies are refused', {
        extensions: { code: 'BAD_REQUEST', http: { status: 415 } },
      });
    },
  };
}

/**
 * Any origin may call /graphql with a bearer token it holds (a Playground or
 * Altair page elsewhere): `*`, never with credentials. Origins listed in
 * CORS_ORIGINS are reflected with Access-Control-Allow-Credentials.
 */
export function corsHeaders(origin: string | undefined, trusted: readonly string[]): Record<string, string> {
  if (!origin) return {};
  if (trusted.includes(origin)) return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
  return { 'access-control-allow-origin': '*' };
}

/** The answer to an OPTIONS preflight, on top of corsHeaders. */
export function preflightHeaders(origin: string | undefined): Record<string, string> {
  if (!origin) return {};
  return {
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type, accept, x-apollo-tracing, apollographql-client-name, apollographql-client-version',
    'access-control-max-age': '600',
  };
}
