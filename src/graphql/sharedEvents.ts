// A yoga/envelop plugin: subscriptions whose root fields are listed as
// viewer-independent execute each source event once per document and
// variables, and every subscriber of that event gets the same result. With
// 500 subscribers of one job's log, that is one GraphQL execution per chunk
// instead of 500.
//
// Only the per-event execution is shared. Subscribing (the field's
// subscribe resolver, its auth scopes and the visibility check in it) still
// runs once per subscriber with its own context, so authorization is decided
// per subscriber, at subscribe time. The source must hand the same event
// object to every subscriber for sharing to happen (services/live.ts does for
// live log chunks); other events are executed once each, as before.
import type { Plugin } from 'graphql-yoga';
import {
  createSourceEventStream, execute, Kind,
  type DocumentNode, type ExecutionArgs, type ExecutionResult, type OperationDefinitionNode,
} from 'graphql';

type Result = ExecutionResult | Promise<ExecutionResult>;

/** Root subscription fields whose selections resolve from the event alone, whoever the viewer. */
export function useSharedSubscriptionEvents(rootFields: readonly string[]): Plugin {
  const fields = new Set(rootFields);
  const shareable = new WeakMap<DocumentNode, boolean>();
  const docIds = new WeakMap<DocumentNode, number>();
  let nextDocId = 0;
  // event → (document + variables) → result; entries go with the event.
  const results = new WeakMap<object, Map<string, Result>>();

  function isShareable(args: ExecutionArgs): boolean {
    let known = shareable.get(args.document);
    if (known === undefined) {
      const ops = args.document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
      known = ops.length === 1 && ops[0]!.operation === 'subscription' &&
        ops[0]!.selectionSet.selections.every((s) => s.kind === Kind.FIELD && fields.has(s.name.value) && !s.directives?.length);
      shareable.set(args.document, known);
    }
    return known;
  }

  function keyOf(args: ExecutionArgs): string {
    let id = docIds.get(args.document);
    if (id === undefined) docIds.set(args.document, (id = nextDocId++));
    return `${id}\n${args.operationName ?? ''}\n${JSON.stringify(args.variableValues ?? {})}`;
  }

  function resultFor(event: unknown, args: ExecutionArgs, key: string): Result {
    if (typeof event !== 'object' || event === null) return execute({ ...args, rootValue: event });
    let byKey = results.get(event);
    if (!byKey) results.set(event, (byKey = new Map()));
    let r = byKey.get(key);
    if (!r) byKey.set(key, (r = execute({ ...args, rootValue: event })));
    return r;
  }

  async function subscribe(args: ExecutionArgs) {
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
    const it = source[Symbol.asyncIterator]();
    const key = keyOf(args);
    let failed = false;
    const mapped: AsyncIterableIterator<ExecutionResult> = {
      // A source that threw has ended: its error is passed on once, then done.
      async next() {
        if (failed) return { done: true, value: undefined };
        let r: IteratorResult<unknown>;
        try {
          r = await it.next();
        } catch (err) {
          failed = true;
          throw err;
        }
        return r.done ? { done: true, value: undefined } : { done: false, value: await resultFor(r.value, args, key) };
      },
      // Unsubscribing must reach the source at once (it may be waiting for the next event).
      async return() {
        await it.return?.();
        return { done: true, value: undefined };
      },
      async throw(err?: unknown) {
        await it.throw?.(err);
        throw err;
      },
      [Symbol.asyncIterator]: () => mapped,
    };
    return mapped;
  }

  return {
    onSubscribe({ args, setSubscribeFn }) {
      if (isShareable(args as ExecutionArgs)) setSubscribeFn(subscribe as Parameters<typeof setSubscribeFn>[0]);
    },
  };
}
