// Matches a request to the route table, validates path/query/body, runs the
// route's pre-parsed, pre-validated GraphQL document through graphql-js
// `execute` with the same context factory as /graphql, and maps the result.
import { execute, validate, type DocumentNode, type GraphQLSchema, type GraphQLError } from 'graphql';
import type { z } from 'zod';
import type { Config } from '../config.js';
import { toIssues } from '../services/validation.js';
import { toGraphQLError } from '../graphql/errors.js';
import type { Context } from '../graphql/context.js';
import type { Logger } from '../logger.js';
import { MAX_NESTING, nestingDepth } from '../server/body.js';
import { notAuthenticated, notFound, restError, validationError, type RestError } from './errorMapping.js';
import type { Method, Route, RouteInput } from './route.js';

export interface RestRequest {
  method: string;
  /** Path below API_PREFIX, e.g. /jobs/123 */
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  readBody(): Promise<Buffer>;
  context(): Promise<Context>;
}

export interface RestResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Compiled {
  route: Route;
  pattern: RegExp;
  params: string[];
}

function compile(route: Route): Compiled {
  const params: string[] = [];
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
    params.push(name);
    return '([^/]+)';
  });
  return { route, pattern: new RegExp(`^${source}$`), params };
}

/** What a JSON body on the token route gets: the form it takes, and a curl line. */
const FORM_EXPECTED = 'This endpoint takes a form, not JSON: send Content-Type application/x-www-form-urlencoded with the fields username and password, e.g. curl -X POST http://HOST/api/v1/auth/token -d username=you@example.com -d password=YOUR_PASSWORD';

function parseBody(raw: Buffer, route: Route, contentType: string | undefined): { ok: true; value: unknown } | { ok: false; error: RestError } {
  if (route.body?.form) {
    const text = raw.toString('utf8');
    if ((contentType && /^application\/(.+\+)?json\b/i.test(contentType)) || /^\s*[{[]/.test(text)) {
      return { ok: false, error: validationError([{ type: 'form_expected', loc: ['body'], msg: FORM_EXPECTED, input: null }]) };
    }
    return { ok: true, value: Object.fromEntries(new URLSearchParams(text)) };
  }
  const text = raw.toString('utf8');
  if (text.trim() === '') {
    return { ok: false, error: validationError([{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }]) };
  }
  if (contentType && !/^application\/(.+\+)?json\b/i.test(contentType)) {
    return { ok: false, error: validationError([{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: text.slice(0, 200) }]) };
  }
  if (nestingDepth(text, MAX_NESTING) > MAX_NESTING) {
    return { ok: false, error: validationError([{ type: 'json_invalid', loc: ['body'], msg: `JSON nests more than ${MAX_NESTING} levels deep`, input: {} }]) };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: validationError([{ type: 'json_invalid', loc: ['body', 0], msg: `JSON decode error: ${(err as Error).message}`, input: {} }]) };
  }
}

/** The query string as an object; a parameter given more than once becomes an array of its values. */
function queryObject(q: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(q.keys())) {
    const all = q.getAll(key);
    out[key] = all.length > 1 ? all : all[0]!;
  }
  return out;
}

function check<T>(schema: z.ZodType<T>, value: unknown, where: 'body' | 'query'): { ok: true; value: T } | { ok: false; error: RestError } {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: validationError(toIssues(result.error, value, [where])) };
}

export function createRouter(schema: GraphQLSchema, table: Route[], log: Logger, config: Config) {
  for (const r of table) {
    const errors = validate(schema, r.document as DocumentNode);
    if (errors.length) throw new Error(`REST route ${r.method} ${r.path}: its GraphQL document does not validate: ${errors[0]!.message}`);
  }
  const compiled = table.map(compile);

  function match(method: string, path: string): { route: Route; params: Record<string, string> } | { allow: Method[] } | null {
    const allow: Method[] = [];
    for (const c of compiled) {
      const m = c.pattern.exec(path);
      if (!m) continue;
      allow.push(c.route.method);
      if (c.route.method !== (method as Method)) continue;
      let params: Record<string, string>;
      try {
        params = Object.fromEntries(c.params.map((p, i) => [p, decodeURIComponent(m[i + 1]!)]));
      } catch {
        return null;
      }
      return { route: c.route, params };
    }
    return allow.length ? { allow } : null;
  }

  async function handle(req: RestRequest): Promise<RestResponse> {
    const found = match(req.method === 'HEAD' ? 'GET' : req.method, req.path);
    if (found === null) return notFound();
    if ('allow' in found) return { status: 405, body: { detail: 'Method Not Allowed' }, headers: { Allow: found.allow.join(', ') } };
    const { route, params } = found;

    // Like FastAPI's security dependency: no valid session, no further look.
    const ctx = await req.context();
    if (route.auth && !ctx.viewer) return notAuthenticated(ctx.authProblem);

    const input: RouteInput = { path: params, query: undefined, body: undefined };
    if (route.query) {
      const q = check(route.query, queryObject(req.query), 'query');
      if (!q.ok) return q.error;
      input.query = q.value;
    }
    if (route.body) {
      const parsed = parseBody(await req.readBody(), route, req.contentType);
      if (!parsed.ok) return parsed.error;
      const b = check(route.body.schema, parsed.value, 'body');
      if (!b.ok) return b.error;
      const issues = route.refine?.(b.value, config) ?? [];
      if (issues.length) return validationError(issues.map((i) => ({ ...i, loc: ['body', ...i.loc] })));
      input.body = b.value;
    }

    const result = await execute({ schema, document: route.document as DocumentNode, variableValues: route.variables(input) as Record<string, unknown>, contextValue: ctx });
    if (result.errors?.length) {
      const first = toGraphQLError(result.errors[0] as GraphQLError, log);
      return restError(first);
    }
    const data = result.data as unknown;
    return {
      status: route.statusOf?.(data) ?? route.status,
      body: route.response ? route.response.map(data, input) : undefined,
      headers: route.headers?.(data),
    };
  }

  return { handle, match };
}

export type Router = ReturnType<typeof createRouter>;
