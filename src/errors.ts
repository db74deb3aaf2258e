// Domain failures, one class each, with no transport knowledge. GraphQL maps
// them to extensions.code once (graphql/errors.ts); REST maps the code to an
// HTTP status once (rest/errorMapping.ts).

export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'BAD_USER_INPUT'
  | 'RATE_LIMITED'
  | 'GONE'
  | 'SERVICE_UNAVAILABLE';

export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
}

export class NotAuthenticated extends DomainError {
  readonly code = 'UNAUTHENTICATED' as const;
  constructor(message = 'Not authenticated') { super(message); }
}

export class InvalidCredentials extends DomainError {
  readonly code = 'UNAUTHENTICATED' as const;
  constructor() { super('Incorrect username or password'); }
}

export class Forbidden extends DomainError {
  readonly code = 'FORBIDDEN' as const;
  constructor(message = 'Your role does not allow this action') { super(message); }
}

export class NotFound extends DomainError {
  readonly code = 'NOT_FOUND' as const;
  constructor(what = 'Resource') { super(`${what} not found`); }
}

export class Conflict extends DomainError {
  readonly code = 'CONFLICT' as const;
}

/** The object exists but what was asked of it was removed for good (a job's logs, by retention). */
export class Gone extends DomainError {
  readonly code = 'GONE' as const;
}

/** A rule of the domain was broken (400 over REST): the message is a sentence for the user. */
export class BadInput extends DomainError {
  readonly code = 'BAD_USER_INPUT' as const;
}

export interface ValidationIssue {
  type: string;
  loc: (string | number)[];
  msg: string;
  input?: unknown;
}

/** Input shape failed validation (422 over REST, Pydantic-shaped issues). */
export class ValidationFailed extends DomainError {
  readonly code = 'BAD_USER_INPUT' as const;
  constructor(readonly issues: ValidationIssue[]) {
    super(issues.map((i) => `${i.loc.join('.')}: ${i.msg}`).join('; '));
  }
}

export class RateLimited extends DomainError {
  readonly code = 'RATE_LIMITED' as const;
  constructor(readonly retryAfterSeconds: number, message = 'Too many failed attempts; try again later') { super(message); }
}

/** The database did not answer, even after retries: nothing was decided, the same request may succeed shortly. */
export class Unavailable extends DomainError {
  readonly code = 'SERVICE_UNAVAILABLE' as const;
  readonly retryAfterSeconds = 5;
  constructor() { super('The database is not answering; retry in a few seconds (GET /health says when it is back)'); }
}
