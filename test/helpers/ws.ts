// GraphQL over WebSocket for tests: a real graphql-ws client on the `ws`
// package, plus a tracker for one subscription's events and its end.
import { createClient, type Client, type ExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import type { TestServer } from './server.js';

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface WsClient {
  client: Client;
  /** Resolves with the first close of the socket. */
  closed: Promise<CloseInfo>;
  /** The underlying socket, once connected (to stop reading it: `pause()`). */
  socket: Promise<WebSocket>;
  dispose(): Promise<void>;
}

export const wsUrl = (s: Pick<TestServer, 'url'>) => `${s.url.replace(/^http/, 'ws')}/graphql`;

/**
 * A client that never retries and connects at once (lazy: false), so close
 * codes surface to the test. `token: null` sends an empty connection_init.
 */
export function wsClient(s: Pick<TestServer, 'url'>, token: string | null, opts: { lazy?: boolean } = {}): WsClient {
  let resolveClosed!: (c: CloseInfo) => void;
  const closed = new Promise<CloseInfo>((r) => (resolveClosed = r));
  let resolveSocket!: (ws: WebSocket) => void;
  const socket = new Promise<WebSocket>((r) => (resolveSocket = r));
  const client = createClient({
    url: wsUrl(s),
    webSocketImpl: WebSocket,
    lazy: opts.lazy ?? false,
    retryAttempts: 0,
    shouldRetry: () => false,
    onNonLazyError: () => {},
    connectionParams: token === null ? {} : { authorization: `Bearer ${token}` },
    on: {
      connected: (ws) => resolveSocket(ws as WebSocket),
      closed: (event) => {
        const e = event as { code?: number; reason?: string };
        resolveClosed({ code: e.code ?? 0, reason: String(e.reason ?? '') });
      },
    },
  });
  return { client, closed, socket, dispose: async () => void (await client.dispose()) };
}

export interface Tracked<T> {
  /** `data[field]` of every `next`. */
  values: T[];
  /** Errors from `next` payloads and from `error`. */
  errors: any[];
  /** Resolves when the server completes the operation or it errors. */
  done: Promise<'complete' | 'error'>;
  isDone(): boolean;
  /** Stops the operation from the client side. */
  stop(): void;
}

/** Subscribes and records everything; `onValue` sees each value as it arrives. */
export function track<T = any>(client: Client, query: string, variables: Record<string, unknown>, onValue?: (v: T, all: T[]) => void): Tracked<T> {
  const values: T[] = [];
  const errors: any[] = [];
  let finished = false;
  let resolveDone!: (how: 'complete' | 'error') => void;
  const done = new Promise<'complete' | 'error'>((r) => (resolveDone = r));
  const stop = client.subscribe<Record<string, T>>(
    { query, variables },
    {
      next: (result: ExecutionResult<Record<string, T>>) => {
        if (result.errors) errors.push(...result.errors);
        if (result.data) {
          const v = Object.values(result.data)[0] as T;
          values.push(v);
          onValue?.(v, values);
        }
      },
      error: (err: unknown) => {
        errors.push(...(Array.isArray(err) ? err : [err]));
        finished = true;
        resolveDone('error');
      },
      complete: () => {
        finished = true;
        resolveDone(errors.length ? 'error' : 'complete');
      },
    },
  );
  return { values, errors, done, isDone: () => finished, stop };
}

export const JOB_LOG = 'subscription ($id: ID!, $after: Int) { jobLog(id: $id, after: $after) { seq stream data at } }';
export const JOB_UPDATED = 'subscription ($id: ID!) { jobUpdated(id: $id) { id status exitCode } }';
export const JOB_EVENTS = 'subscription ($batchId: ID) { jobEvents(batchId: $batchId) { id status ownerId batchId } }';

export interface Chunk {
  seq: number;
  stream: 'STDOUT' | 'STDERR';
  data: string;
  at: string;
}

/** Lines of the joined chunk data (the trailing newline does not make an empty line). */
export const linesOf = (chunks: Pick<Chunk, 'data'>[]) => {
  const text = chunks.map((c) => c.data).join('');
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
};

export const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_r, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);
