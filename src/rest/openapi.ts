// OpenAPI 3.1 generated from the route table: the same zod schemas that
// validate requests describe them, so the document cannot drift.
import { z } from 'zod';
import { roleTableMarkdown, RULES } from '../services/policy.js';
import type { Route } from './route.js';
import { ErrorRead } from './schemas.js';

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any', io: 'input' });
const out = (schema: z.ZodType) => z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any', io: 'output' });

function strip(s: Record<string, unknown>) {
  const { $schema: _ignored, ...rest } = s;
  return rest;
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: strip(out(ErrorRead)) } } });

/** "Roles: …; API token scope: …", from the policy module. */
function whoMay(r: Route): string {
  const rule = RULES[r.action!];
  const scope = rule.sessionOnly ? 'not with an API token (log in with your password)' : rule.scope ? `API tokens need \`${rule.scope}\`` : 'any API token';
  return `**Who may:** ${rule.roles.join(', ')}${rule.owned ? ' (operators: their own)' : ''}; ${scope}.`;
}

export function buildOpenApi(routes: Route[], prefix: string, version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (r.query) {
      const q = strip(json(r.query)) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        params.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema } as never);
      }
    }
    const responses: Record<string, unknown> = {};
    if (r.stream) {
      responses[String(r.status)] = {
        description: 'The output as it is produced; ends when the job is terminal',
        content: { 'text/plain': { schema: { type: 'string' } }, 'text/event-stream': { schema: { type: 'string' } } },
      };
    } else {
      const content = r.response && { 'application/json': { schema: strip(out(r.response.schema)) } };
      for (const status of new Set([r.status, ...Object.keys(r.statuses ?? {}).map(Number)])) {
        const description = r.statuses?.[status] ?? (content ? 'Success' : 'Success (no content)');
        responses[String(status)] = content ? { description, content } : { description };
      }
    }
    if (r.auth) responses['401'] = errorResponse('Not authenticated');
    if (r.action) responses['403'] = errorResponse('Your role or token scopes do not allow this');
    if (params.some((p) => p.in === 'path')) responses['404'] = errorResponse('Not found, or not yours to see');
    if (r.body || r.query) responses['422'] = errorResponse('Validation error');
    if (r.body) responses['413'] = errorResponse('Request body too large');

    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()}${r.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: r.summary,
      tags: [r.tag],
      ...((r.description || r.action) && { description: [r.description, r.action && whoMay(r)].filter(Boolean).join('\n\n') }),
      ...(params.length && { parameters: params }),
      ...(r.body && {
        requestBody: {
          required: true,
          content: { [r.body.form ? 'application/x-www-form-urlencoded' : 'application/json']: { schema: strip(json(r.body.schema)) } },
        },
      }),
      responses,
      ...(r.auth ? { security: [{ OAuth2PasswordBearer: [] }, { bearerAuth: [] }] } : { security: [] }),
    };
    (paths[prefix + r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Job Runner API',
      version,
      description: `REST compatibility layer: every route runs a GraphQL operation of /graphql.\n\nSend \`Authorization: Bearer <token>\`: a session token from \`POST ${prefix}/auth/token\` or an API token from \`POST ${prefix}/auth/tokens\`. Who may do what:\n\n${roleTableMarkdown()}`,
    },
    paths,
    components: {
      securitySchemes: {
        OAuth2PasswordBearer: { type: 'oauth2', flows: { password: { tokenUrl: `${prefix}/auth/token`, scopes: {} } } },
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'A session JWT or an API token (jrt_…)' },
      },
    },
  };
}
