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
    // A full page (1000 jobs, every field) fits; a page of 1000 jobs with their logs does not.
    limit: { complexity: 20_000, depth: 10, breadth: 100 },
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
