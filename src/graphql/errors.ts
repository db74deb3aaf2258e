// The one place domain errors become GraphQL errors: `extensions.code` from
// the error class, details for validation and rate limits, and everything
// unexpected masked (and logged) as INTERNAL_SERVER_ERROR.
import { GraphQLError } from 'graphql';
import { DomainError, RateLimited, ValidationFailed } from '../errors.js';
import type { Logger } from '../logger.js';

export function toGraphQLError(error: unknown, log?: Logger): GraphQLError {
  const gqlError = error instanceof GraphQLError ? error : null;
  const original = gqlError?.originalError ?? error;
  if (original instanceof DomainError) {
    const extensions: Record<string, unknown> = { code: original.code };
    if (original instanceof ValidationFailed) extensions.issues = original.issues;
    if (original instanceof RateLimited) extensions.retryAfter = original.retryAfterSeconds;
    return new GraphQLError(original.message, {
      nodes: gqlError?.nodes,
      source: gqlError?.source,
      positions: gqlError?.positions,
      path: gqlError?.path,
      originalError: original,
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
