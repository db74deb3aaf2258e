// The legacy `graphql-ws` subprotocol of subscriptions-transport-ws (GraphQL
// Playground, older Apollo clients), on the connection logic the current
// protocol uses (./websocket.ts): same authentication, limits, closes and
// operation execution. Messages, client → server: connection_init, start,
// stop, connection_terminate; server → client: connection_ack,
// connection_error, ka, data, error, complete.
//
// A refused connection_init gets connection_error with the reason, then the
// same close as graphql-transport-ws (4403, 4429). A start before
// connection_init, a bad message or an operation that cannot run (parse or
// validation errors, the subscription limit) gets `error` for that id; the
// socket stays open. `ka` right after connection_ack and every keep-alive
// interval: the old client drops a connection that sends none for 30 s.
import type { IncomingMessage } from 'node:http';
import type { GraphQLError } from 'graphql';
import { WebSocket, type WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';
import { CONNECTION_INIT_WAIT_MS, type OperationPayload, type SocketSessions } from './websocket.js';

const CLOSE_INIT_TIMEOUT = 4408;
const CLOSE_TOO_MANY_INITIALISATIONS = 4429;

interface Message {
  type: string;
  id?: string;
  payload?: unknown;
}

const errorJson = (message: string, code?: string) => ({ message, ...(code ? { extensions: { code } } : {}) });

function parseMessage(text: string): Message | null {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof msg !== 'object' || msg === null || typeof (msg as Message).type !== 'string') return null;
  const id = (msg as Message).id;
  return id === undefined || typeof id === 'string' ? (msg as Message) : null;
}

function operationPayload(payload: unknown): OperationPayload | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const p = payload as Record<string, unknown>;
  if (typeof p.query !== 'string') return null;
  if (p.variables != null && (typeof p.variables !== 'object' || Array.isArray(p.variables))) return null;
  if (p.operationName != null && typeof p.operationName !== 'string') return null;
  return p as unknown as OperationPayload;
}

export function serveLegacyProtocol(wss: WebSocketServer, sessions: SocketSessions, log: Logger): void {
  wss.on('connection', (ws: WebSocket, request: IncomingMessage) => {
    // Resolves true once connection_init was accepted; null until it arrives.
    let initialised: Promise<boolean> | null = null;
    let keepAlive: NodeJS.Timeout | null = null;
    const operations = new Map<string, () => void>();

    const send = (msg: Message) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    };
    const sendErrors = (id: string | undefined, errors: ReadonlyArray<GraphQLError | ReturnType<typeof errorJson>>) => send({ type: 'error', id, payload: errors });

    const initWait = setTimeout(() => {
      if (!initialised) ws.close(CLOSE_INIT_TIMEOUT, 'Connection initialisation timeout');
    }, CONNECTION_INIT_WAIT_MS);

    async function init(params: unknown): Promise<boolean> {
      const refusal = await sessions.admit(ws, request, params);
      if (refusal) {
        send({ type: 'connection_error', payload: { message: refusal.reason } });
        ws.close(refusal.code, refusal.reason);
        return false;
      }
      send({ type: 'connection_ack' });
      send({ type: 'ka' });
      keepAlive = setInterval(() => send({ type: 'ka' }), sessions.keepAliveMs);
      keepAlive.unref();
      return true;
    }

    async function start(id: string, payload: OperationPayload, ready: Promise<boolean>) {
      let stopped = false;
      let stopSource = () => {};
      const stop = () => {
        stopped = true;
        stopSource();
      };
      operations.get(id)?.(); // a start with an id in use replaces that operation
      operations.set(id, stop);
      const finish = () => {
        if (operations.get(id) === stop) operations.delete(id);
      };
      try {
        if (!(await ready) || stopped) return;
        const op = await sessions.prepare(ws, request, payload);
        if (stopped) return;
        if (Array.isArray(op)) return sendErrors(id, op);
        const result = await op.run();
        if (!(Symbol.asyncIterator in result)) {
          if (!stopped) send({ type: 'data', id, payload: result });
        } else {
          const it = result[Symbol.asyncIterator]();
          stopSource = () => void it.return?.();
          if (stopped) return stopSource();
          for (let r = await it.next(); !r.done && !stopped; r = await it.next()) send({ type: 'data', id, payload: r.value });
        }
        if (!stopped) send({ type: 'complete', id });
      } catch (err) {
        if (!stopped) sendErrors(id, [errorJson(err instanceof Error ? err.message : String(err))]);
      } finally {
        finish();
      }
    }

    function onMessage(text: string) {
      const msg = parseMessage(text);
      if (!msg) return sendErrors(undefined, [errorJson('Invalid message: expected JSON {"type": ..., "id"?: string, "payload"?: ...}', 'BAD_REQUEST')]);
      switch (msg.type) {
        case 'connection_init':
          if (initialised) {
            send({ type: 'connection_error', payload: { message: 'Too many initialisation requests' } });
            return ws.close(CLOSE_TOO_MANY_INITIALISATIONS, 'Too many initialisation requests');
          }
          initialised = init(msg.payload);
          return;
        case 'start': {
          if (msg.id === undefined) return sendErrors(undefined, [errorJson('start needs an id', 'BAD_REQUEST')]);
          if (!initialised) return sendErrors(msg.id, [errorJson('Not initialised: send connection_init first', 'UNAUTHENTICATED')]);
          const payload = operationPayload(msg.payload);
          if (!payload) return sendErrors(msg.id, [errorJson('start needs a payload {query, variables?, operationName?}', 'BAD_REQUEST')]);
          if (!operations.has(msg.id) && operations.size >= sessions.maxSubscriptionsPerConnection) {
            sessions.onRateLimited('ws_subscriptions');
            return sendErrors(msg.id, [
              errorJson(`Too many subscriptions on this connection: at most ${sessions.maxSubscriptionsPerConnection}; stop some or open another connection`, 'RATE_LIMITED'),
            ]);
          }
          return void start(msg.id, payload, initialised);
        }
        case 'stop':
          if (msg.id !== undefined) operations.get(msg.id)?.();
          return;
        case 'connection_terminate':
          return ws.close(1000, 'connection_terminate');
        default:
          return sendErrors(msg.id, [errorJson(`Unknown message type "${msg.type}"`, 'BAD_REQUEST')]);
      }
    }

    ws.on('message', (data) => {
      try {
        onMessage(String(data));
      } catch (err) {
        log.error('legacy websocket message failed', { err: (err as Error).message });
        ws.close(1011, 'Internal server error');
      }
    });
    ws.once('close', () => {
      clearTimeout(initWait);
      if (keepAlive) clearInterval(keepAlive);
      for (const stop of [...operations.values()]) stop();
      operations.clear();
    });
  });
}
