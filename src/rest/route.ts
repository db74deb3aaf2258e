import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import type { z } from 'zod';
import type { Config } from '../config.js';
import type { ValidationIssue } from '../errors.js';
import type { Action } from '../services/policy.js';

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface RouteInput<B = any, Q = any> {
  path: Record<string, string>;
  query: Q;
  body: B;
}

/**
 * One REST route = one GraphQL operation: how the request becomes
 * variables, which status success answers, and how data becomes the body.
 * The router, the OpenAPI document and the auth tests all read this.
 */
export interface Route<TData = any, TVars = any, B = any, Q = any> {
  method: Method;
  /** Relative to API_PREFIX, OpenAPI style: /jobs/{id} */
  path: string;
  summary: string;
  tag: string;
  /** false only for the token and health routes. */
  auth: boolean;
  /** What the route does, in services/policy.ts's terms: the services decide on it; the OpenAPI document shows who may. */
  action?: Action;
  document: TypedDocumentNode<TData, TVars>;
  body?: { schema: z.ZodType<B>; form?: boolean };
  /**
   * Body rules that depend on the configuration (resource limit ceilings),
   * checked after the schema: issues with `loc` inside the body, answered
   * as the same 422 as the schema's.
   */
  refine?: (body: B, config: Config) => ValidationIssue[];
  query?: z.ZodType<Q>;
  variables: (input: RouteInput<B, Q>) => TVars;
  status: number;
  /**
   * When success has more than one status (health: 503 when a backend is
   * down; cancel: 202 while the stop is not confirmed): the one for this data.
   */
  statusOf?: (data: TData) => number;
  /** What each success status means, for OpenAPI: `status` (default "Success") and every other one statusOf may answer, each with the response body. */
  statuses?: Record<number, string>;
  response?: { schema: z.ZodType; map: (data: TData, input: RouteInput<B, Q>) => unknown };
  headers?: (data: TData) => Record<string, string>;
  description?: string;
  /** Streams instead of answering JSON (documented, handled outside execute). */
  stream?: true;
}

export const route = <TData, TVars, B = undefined, Q = undefined>(r: Route<TData, TVars, B, Q>): Route => r as Route;
