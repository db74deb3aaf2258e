// GraphQL operations on every transport yoga runs (HTTP, SSE, both
// WebSocket protocols through getEnveloped): counts and execution time by
// operation name, and live subscriptions by transport. Operation names are
// chosen by clients, so the label takes the REST operations' names and the
// first OTHER_NAMES others seen, then 'other'.
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { labelled, TRANSPORTS, type Metrics, type Transport } from './registry.js';

const OTHER_NAMES = 100;
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Maps a client's operation name to a label value from a bounded set. */
export function operationNames(known: Iterable<string>, cap = OTHER_NAMES): (name: string | null | undefined) => string {
  const fixed = new Set(known);
  const others = new Set<string>();
  return (name) => {
    if (!name) return 'anonymous';
    if (fixed.has(name) || others.has(name)) return name;
    if (others.size >= cap || !NAME.test(name)) return 'other';
    others.add(name);
    return name;
  };
}

const isTransport = (v: unknown): v is Transport => (TRANSPORTS as readonly unknown[]).includes(v);

/** The yoga plugin; a WebSocket's operations carry `transport` in their server context, HTTP ones are SSE. */
export function useGraphQLMetrics(metrics: Metrics, nameOf: (name: string | null | undefined) => string): Plugin {
  const operations = labelled((name, type, outcome) => metrics.graphqlOperations.labels(name, type, outcome));
  const durations = labelled((name, type) => metrics.graphqlDuration.labels(name, type));
  const describe = (args: { document: Parameters<typeof getOperationAST>[0]; operationName?: string | null }) => {
    const op = getOperationAST(args.document, args.operationName);
    return { type: op?.operation ?? 'query', name: nameOf(op?.name?.value ?? args.operationName) };
  };
  return {
    onExecute({ args }) {
      const { type, name } = describe(args);
      const startedAt = performance.now();
      return {
        onExecuteDone({ result }) {
          const outcome = Symbol.asyncIterator in result || !result.errors?.length ? 'ok' : 'error';
          operations(name, type, outcome).inc();
          durations(name, type).observe((performance.now() - startedAt) / 1000);
        },
      };
    },
    onSubscribe({ args }) {
      const { name } = describe(args);
      const given = (args.contextValue as { transport?: unknown }).transport;
      const transport: Transport = isTransport(given) ? given : 'sse';
      return {
        onSubscribeResult({ result }) {
          if (!(Symbol.asyncIterator in result)) {
            operations(name, 'subscription', 'error').inc();
            return;
          }
          operations(name, 'subscription', 'ok').inc();
          const live = metrics.subscribers.labels(transport);
          live.inc();
          let ended = false;
          return {
            onEnd() {
              if (ended) return;
              ended = true;
              live.dec();
            },
          };
        },
      };
    },
  };
}
