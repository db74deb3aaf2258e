// Wires plugins and the context type only; types live in graphql/types/.
import SchemaBuilder from '@pothos/core';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ComplexityPlugin from '@pothos/plugin-complexity';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import { BadInput, Forbidden } from '../errors.js';
import { notAuthenticated, type Context } from './context.js';

/**
 * One point is about one field of one row. A full page (1000 jobs, every
 * field) fits; a page of jobs with their logs, or of batches with their jobs,
 * does not. server/graphqlLimits.ts checks it before execution on every
 * transport (the operations of a batched request share it); the plugin checks
 * it again at each root field.
 */
export const QUERY_LIMITS = { complexity: 20_000, depth: 10, breadth: 100 };

/** A batch holds at most this many jobs, so listing its jobs costs that many rows. */
export const BATCH_JOBS_BOUND = 1000;

/** What the server adds to an operation's context so costs follow its configuration. */
export interface CostContext {
  maxLogBytes?: number;
}

const DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024;

/** A stored log stream may hold MAX_LOG_BYTES: a point per 64 KiB (160 at the default 10 MiB). */
export const logStreamCost = (ctx: object) => Math.ceil(((ctx as CostContext).maxLogBytes ?? DEFAULT_MAX_LOG_BYTES) / 65536);

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  // Only whether there is a principal: what it may do is services/policy.ts's decision, made in the services.
  AuthScopes: { authenticated: boolean };
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    JSONObject: { Input: Record<string, unknown>; Output: Record<string, unknown> };
  };
  DefaultFieldNullability: false;
}>({
  plugins: [ScopeAuthPlugin, ComplexityPlugin, PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (ctx) => ({ authenticated: ctx.viewer !== null }),
    unauthorizedError: (_parent, ctx) => (ctx.viewer ? new Forbidden() : notAuthenticated(ctx)),
  },
  complexity: {
    defaultComplexity: 1,
    defaultListMultiplier: 10,
    limit: QUERY_LIMITS,
    complexityError: (kind, result) => {
      const [value, max] = {
        Depth: [result.depth, result.maxDepth],
        Breadth: [result.breadth, result.maxBreadth],
        Complexity: [result.complexity, result.maxComplexity],
      }[kind];
      return new BadInput(`Query ${kind.toLowerCase()} ${value} exceeds the limit of ${max}; ask for fewer fields or smaller pages`);
    },
  },
  prisma: {
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesOnConnection: true,
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
