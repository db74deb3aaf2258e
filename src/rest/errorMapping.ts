// The one mapping from GraphQL `extensions.code` to an HTTP status and body.
import type { GraphQLError } from 'graphql';
import type { ValidationIssue } from '../errors.js';

export interface RestError {
  status: number;
  body: { detail: unknown };
  headers?: Record<string, string>;
}

const STATUS: Record<string, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  BAD_USER_INPUT: 400,
  RATE_LIMITED: 429,
  GONE: 410,
  SERVICE_UNAVAILABLE: 503,
};

export function restError(error: GraphQLError): RestError {
  const code = String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR');
  const issues = error.extensions?.issues as ValidationIssue[] | undefined;
  if (code === 'BAD_USER_INPUT' && issues) {
    // Validation the body schema did not catch (rules only the service knows): still a 422.
    return { status: 422, body: { detail: issues.map((i) => ({ ...i, loc: i.loc[0] === 'body' || i.loc[0] === 'query' || i.loc[0] === 'path' ? i.loc : ['body', ...i.loc] })) } };
  }
  const status = STATUS[code] ?? 500;
  if (status === 500) return { status, body: { detail: 'Internal Server Error' } };
  const headers: Record<string, string> = {};
  if (status === 401) headers['WWW-Authenticate'] = bearerChallenge(null);
  if (status === 429 || status === 503) headers['Retry-After'] = String(error.extensions?.retryAfter ?? 60);
  return { status, body: { detail: error.message }, headers };
}

/**
 * The 401 answer's challenge (RFC 6750): bare when no bearer token was given,
 * else `invalid_token` with why it was refused.
 */
export function bearerChallenge(problem: string | null): string {
  return problem ? `Bearer error="invalid_token", error_description="${problem}"` : 'Bearer';
}

/** 401 for a request without a usable bearer token. */
export const notAuthenticated = (problem: string | null): RestError => ({
  status: 401,
  body: { detail: 'Not authenticated' },
  headers: { 'WWW-Authenticate': bearerChallenge(problem) },
});

export const validationError = (issues: ValidationIssue[]): RestError => ({ status: 422, body: { detail: issues } });
export const notFound = (): RestError => ({ status: 404, body: { detail: 'Not Found' } });
