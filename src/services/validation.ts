// Field rules shared by the GraphQL services and the REST body schemas, and
// the translation of zod issues into Pydantic v2-shaped ones.
import { z } from 'zod';
import { ValidationFailed, type ValidationIssue } from '../errors.js';

export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** Text that can be stored anywhere: PostgreSQL refuses NUL in text columns. */
export const text = () => z.string().refine((s) => !s.includes('\0'), 'must not contain NUL characters');

// No whitespace or control characters anywhere; one @; a dot in the domain.
export const email = z.string().trim().max(254).regex(/^[^@\s\p{Cc}]+@[^@\s\p{Cc}]+\.[^@\s\p{Cc}]+$/u, 'value is not a valid email address');
export const password = z.string().min(8).max(256);
export const role = z.enum(ROLES);
export const jobLimit = z.number().int().min(1).max(10000);

const TYPE_NAMES: Record<string, string> = { boolean: 'bool_type', number: 'int_type', int: 'int_type', string: 'string_type', object: 'dict_type', record: 'dict_type', array: 'list_type' };

function pydanticType(issue: z.core.$ZodIssue, input: unknown): string {
  if (input === undefined && issue.code !== 'unrecognized_keys') return 'missing';
  switch (issue.code) {
    case 'invalid_type':
      return TYPE_NAMES[issue.expected] ?? `${issue.expected}_type`;
    case 'too_small':
      if (issue.origin === 'string') return 'string_too_short';
      if (issue.origin === 'array' || issue.origin === 'set') return 'too_short';
      return 'greater_than_equal';
    case 'too_big':
      if (issue.origin === 'string') return 'string_too_long';
      if (issue.origin === 'array' || issue.origin === 'set') return 'too_long';
      return 'less_than_equal';
    case 'unrecognized_keys':
      return 'extra_forbidden';
    case 'invalid_value':
      return issue.values.length > 1 ? 'enum' : 'literal_error';
    case 'invalid_format':
      return 'string_pattern_mismatch';
    default:
      return 'value_error';
  }
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

const MAX_ECHO = 1024;

/** What a 422 echoes back as `input`: small values as they are, big or deeply nested ones summarized. */
function echo(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'string' && value.length > MAX_ECHO ? value.slice(0, MAX_ECHO) + '…' : value;
  try {
    const text = JSON.stringify(value);
    return text.length <= MAX_ECHO ? value : text.slice(0, MAX_ECHO) + '…';
  } catch {
    return Array.isArray(value) ? '[…]' : '{…}';
  }
}

/** Pydantic-shaped issues, `loc` prefixed with where the input came from (`body`, `query`, `path`, or nothing for GraphQL). */
export function toIssues(error: z.ZodError, root: unknown, prefix: (string | number)[] = []): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push({ type: 'extra_forbidden', loc: [...prefix, ...path, key], msg: 'Extra inputs are not permitted', input: echo(valueAt(root, [...path, key])) });
      }
      continue;
    }
    if (issue.code === 'invalid_key') {
      // A record key (env names): say which key and the rule it breaks, not "Invalid key in record".
      const key = path[path.length - 1];
      const rule = issue.issues.map((i) => ('pattern' in i && typeof i.pattern === 'string' ? `keys must match ${i.pattern.replace(/^\/|\/$/g, '')}` : i.message)).join('; ');
      issues.push({ type: 'invalid_key', loc: [...prefix, ...path], msg: `key ${JSON.stringify(String(key))} is not allowed: ${rule}`, input: echo(key) });
      continue;
    }
    const input = valueAt(root, path);
    const type = pydanticType(issue, input);
    const msg = type === 'missing' ? 'Field required' : issue.message;
    issues.push({ type, loc: [...prefix, ...path], msg, input: type === 'missing' ? undefined : echo(input) });
  }
  return issues;
}

/** Parses or throws ValidationFailed; GraphQL callers use this (loc without a prefix). */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix: (string | number)[] = []): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationFailed(toIssues(result.error, input, prefix));
  return result.data;
}
