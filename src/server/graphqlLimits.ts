// What one GraphQL request may cost, checked before anything runs, on every
// transport that executes through yoga's envelop (HTTP, SSE, WebSocket):
// parsing is bounded in tokens and nesting, and each operation's complexity
// (schema costs from graphql/builder.ts, aliases counted as the fields they
// repeat) is checked against QUERY_LIMITS. The operations of one batched HTTP
// request share one budget. A refusal is a 400 with a message, never a log line.
import { complexityFromQuery } from '@pothos/plugin-complexity';
import { GraphQLError, Lexer, Source, TokenKind, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { QUERY_LIMITS, type CostContext } from '../graphql/builder.js';
import { MAX_NESTING, nestingDepth } from './body.js';

/**
 * Tokens one document may hold. GraphiQL's introspection query is about 300;
 * large inputs belong in variables.
 */
export const MAX_TOKENS = 5000;

/** Complexity spent so far by the operations of one HTTP request (a batch shares one). */
export interface Budget {
  spent: number;
}

function limitError(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
}

function costError(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | undefined | null, ctx: object, maxLogBytes: number): GraphQLError | null {
  let cost;
  try {
    cost = complexityFromQuery(document, { schema, ctx: { ...ctx, maxLogBytes } satisfies CostContext, variables: variables ?? {} });
  } catch {
    // Invalid variables and the like: execution reports them with their own message.
    return null;
  }
  if (cost.depth > QUERY_LIMITS.depth) return limitError(`Query depth ${cost.depth} exceeds the limit of ${QUERY_LIMITS.depth}; ask for fewer nested fields`);
  if (cost.breadth > QUERY_LIMITS.breadth) return limitError(`Query breadth ${cost.breadth} exceeds the limit of ${QUERY_LIMITS.breadth}; ask for fewer fields`);
  const budget = (ctx as { budget?: Budget }).budget;
  const spent = (budget?.spent ?? 0) + cost.complexity;
  if (budget) budget.spent = spent;
  if (spent > QUERY_LIMITS.complexity) {
    const what = spent === cost.complexity ? `Query complexity ${spent}` : `Query complexity ${cost.complexity} (${spent} with the other operations of this request)`;
    return limitError(`${what} exceeds the limit of ${QUERY_LIMITS.complexity}; ask for fewer fields or smaller pages`);
  }
  return null;
}

function documentError(query: string): GraphQLError | null {
  if (nestingDepth(query, MAX_NESTING, true) > MAX_NESTING) return limitError(`The document nests more than ${MAX_NESTING} levels deep`);
  return null;
}

/** Whether `query` holds more than MAX_TOKENS tokens (a syntax error is left to the parser). */
function tooManyTokens(query: string): boolean {
  const lexer = new Lexer(new Source(query));
  try {
    for (let n = 0; lexer.advance().kind !== TokenKind.EOF; ) if (++n > MAX_TOKENS) return true;
  } catch {
    return false;
  }
  return false;
}

/** The summed complexity of a batch's documents, those that parse (the others fail on their own). */
function batchCost(schema: GraphQLSchema, batch: { query?: string; variables?: Record<string, unknown> }[], maxLogBytes: number): number {
  let total = 0;
  for (const params of batch) {
    if (typeof params.query !== 'string') continue;
    try {
      total += complexityFromQuery(parse(params.query, { maxTokens: MAX_TOKENS }), { schema, ctx: { maxLogBytes } satisfies CostContext, variables: params.variables ?? {} }).complexity;
    } catch {
      // Syntax and variable errors are reported by the operation itself.
    }
  }
  return total;
}

export function useQueryLimits(schema: GraphQLSchema, maxLogBytes: number): Plugin {
  return {
    // HTTP: refused here with a 400 whatever the Accept header (yoga answers
    // parse errors with 200 to application/json, as the GraphQL over HTTP spec asks).
    onRequestParse() {
      return {
        onRequestParseDone({ requestParserResult }) {
          for (const params of Array.isArray(requestParserResult) ? requestParserResult : [requestParserResult]) {
            if (typeof params.query !== 'string') continue;
            const error = documentError(params.query) ?? (tooManyTokens(params.query) ? limitError(`The document holds more than ${MAX_TOKENS} tokens; send large inputs as variables`) : null);
            if (error) throw error;
          }
          // A batch is refused whole, before any of it runs, when its operations together cost too much.
          if (Array.isArray(requestParserResult) && requestParserResult.length > 1) {
            const total = batchCost(schema, requestParserResult as { query?: string; variables?: Record<string, unknown> }[], maxLogBytes);
            if (total > QUERY_LIMITS.complexity) throw limitError(`The operations of this batch cost ${total} together, over the limit of ${QUERY_LIMITS.complexity}; send fewer or smaller operations`);
          }
        },
      };
    },
    // Every transport, HTTP included: the same bounds inside the parser.
    onParse({ setParseFn }) {
      setParseFn((source, options) => {
        const error = documentError(typeof source === 'string' ? source : source.body);
        if (error) throw error;
        return parse(source, { ...options, maxTokens: MAX_TOKENS });
      });
    },
    onExecute({ args, setResultAndStopExecution }) {
      const error = costError(args.schema, args.document, args.variableValues, args.contextValue as object, maxLogBytes);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = costError(args.schema, args.document, args.variableValues, args.contextValue as object, maxLogBytes);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
