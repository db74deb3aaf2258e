// The one place domain errors become GraphQL errors: `extensions.code` from
// the error class, details for validation and rate limits, a database that
// does not answer as SERVICE_UNAVAILABLE, and everything unexpected masked
// (and logged) as INTERNAL_SERVER_ERROR.
import { GraphQLError } from 'graphql';
import { isTransientDbError } from '../db/retry.js';
import { DomainError, RateLimited, Unavailable, ValidationFailed } from '../errors.js';
import type { Logger } from '../logger.js';

/** `error` as a domain error when it is one or a database outage (logged, and so counted in the metrics), else null. */
function domainErrorOf(error: unknown, log?: Logger): DomainError | null {
  if (error instanceof DomainError) return error;
  if (!isTransientDbError(error)) return null;
  log?.warn('database not answering', { err: error });
  return new Unavailable();
}

export function toGraphQLError(error: unknown, log?: Logger): GraphQLError {
  const gqlError = error instanceof GraphQLError ? error : null;
  const original = gqlError?.originalError ?? error;
  const domain = domainErrorOf(original, log);
  if (domain) {
    const extensions: Record<string, unknown> = { code: domain.code };
    if (domain instanceof ValidationFailed) extensions.issues = domain.issues;
    if (domain instanceof RateLimited || domain instanceof Unavailable) extensions.retryAfter = domain.retryAfterSeconds;
    return new GraphQLError(domain.message, {
      nodes: gqlError?.nodes,
      source: gqlError?.source,
      positions: gqlError?.positions,
      path: gqlError?.path,
      originalError: domain,
      extensions,
    });
  }
  // Parse, validation and input-coercion errors of graphql-js itself (the
  // executor wraps argument-coercion errors once more, hence the unwrap).
  const own = gqlError && (!gqlError.originalError ? gqlError : original instanceof GraphQLError ? original : null);
  if (gqlError && own) {
    if (own.extensions.code) return own;
    return new GraphQLError(own.message, { nodes: gqlError.nodes, source: gqlError.source, positions: gqlError.positions, path: gqlError.path, extensions: { ...own.extensions, code: 'BAD_USER_INPUT' } });
  }
  log?.error('unexpected error', { err: original instanceof Error ? original : String(original), path: gqlError?.path });
  return new GraphQLError('Unexpected error.', { nodes: gqlError?.nodes, path: gqlError?.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}
