// REST request and response shapes (snake_case). Request schemas validate
// bodies before any GraphQL runs; all of them feed the OpenAPI document.
// Field rules come from services/validation.ts, shared with GraphQL.
import { z } from 'zod';
import { email, jobLimit, password, role } from '../services/validation.js';

const timestamp = z.string().meta({ format: 'date-time', example: '2026-11-25T10:00:00.000Z' });

export const TokenForm = z.strictObject({
  username: z.string().min(1).meta({ description: 'The email address' }),
  password: z.string().min(1),
  grant_type: z.literal('password').optional(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
});

export const TokenRead = z.object({
  access_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.number().int(),
});

export const UserCreate = z.strictObject({
  email,
  password,
  role,
  is_active: z.boolean().optional(),
  max_concurrent_jobs: jobLimit.nullable().optional(),
});

export const UserUpdate = z.strictObject({
  role: role.optional(),
  password: password.optional(),
  is_active: z.boolean().optional(),
  max_concurrent_jobs: jobLimit.nullable().optional().meta({ description: 'null clears the override' }),
});

export const UserRead = z.object({
  id: z.string(),
  email: z.string(),
  role,
  is_active: z.boolean(),
  max_concurrent_jobs: z.number().int().nullable(),
  created_at: timestamp,
});

export const LimitSet = z.strictObject({ max_concurrent_jobs: jobLimit });
export const UserLimitSet = z.strictObject({ max_concurrent_jobs: jobLimit.nullable() });

export const LimitsRead = z.object({
  default_max_concurrent_jobs: z.number().int(),
  overrides: z.array(z.object({ user_id: z.string(), email: z.string(), max_concurrent_jobs: z.number().int() })),
});

export const HealthRead = z.object({
  status: z.enum(['ok', 'unavailable']),
  database: z.boolean(),
  redis: z.boolean().nullable(),
  version: z.string(),
});

export const ErrorRead = z.object({ detail: z.union([z.string(), z.array(z.object({ type: z.string(), loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), input: z.unknown().optional() }))]) });
