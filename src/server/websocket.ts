// GraphQL over WebSocket on the HTTP server's /graphql path, in both
// protocols, chosen by Sec-WebSocket-Protocol: graphql-transport-ws
// (graphql-ws; preferred when both are offered) and the legacy graphql-ws
// protocol of subscriptions-transport-ws (./legacyWs.ts; GraphQL Playground
// and older Apollo clients speak it). A socket offering neither is closed
// with 4406 and a reason naming both.
//
// Both protocols share everything below: authentication from the
// connection_init payload, the per-user connection limit, the token-expiry
// and access-change closes, and one way of running an operation: yoga's
// enveloped parse/validate/execute/subscribe (so the same plugins and
// limits as HTTP) with the same context factory; every operation builds a
// fresh context, which re-reads the caller's role and activity.
//
// Close codes: 4403 "Forbidden" for a missing/bad token in connection_init,
// when the token expires while connected, and when the user's access changes
// (session revoked, password, role or activity changed: announced on every
// process, then re-checked here); 4429 past the per-user connection limit;
// 4408 when connection_init does not arrive in time; 1009 with a reason for
// a message over `maxPayloadBytes`; 1013 "Try Again Later" when the database
// does not answer at connection_init (clients reconnect after it). Past the per-connection subscription
// limit the new operation gets a RATE_LIMITED GraphQL error. The legacy
// protocol first says why in a connection_error message.
//
// Backpressure: an operation's next result is pulled only while the
// socket holds at most MAX_BUFFERED_BYTES unsent; a log follower that is not
// pulled falls back to the database, so a slow reader costs about that bound.
//
// Keep-alive: a ping every `keepAliveMs`; a socket that neither answered the
// previous ping nor took any of our bytes since is terminated. (graphql-ws's
// own keep-alive, turned off here, terminates on a late pong alone, which
// kills clients that are alive but still reading a backlog: their pong waits
// behind megabytes of log output.)
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GraphQLError, getOperationAST, type ExecutionArgs, type OperationTypeNode } from 'graphql';
import { CloseCode, DEPRECATED_GRAPHQL_WS_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL, type OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocket, WebSocketServer } from 'ws';
import { toGraphQLError } from '../graphql/errors.js';
import type { Logger } from '../logger.js';
import type { Viewer } from '../services/deps.js';
import type { Services } from '../services/index.js';
import { sameRights } from '../services/policy.js';
import { clientAddressOf } from './clientAddress.js';
import { bearerToken } from './contextFactory.js';
import { serveLegacyProtocol } from './legacyWs.js';

const WS_PATH = '/graphql';
const CLOSE_TOO_MANY_CONNECTIONS = 4429;
const CLOSE_MESSAGE_TOO_BIG = 1009;
const CLOSE_TRY_AGAIN_LATER = 1013;

/** Unsent bytes a socket may hold before its operations stop pulling results. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

interface LiveSocketOptions {
  maxConnectionsPerUser: number;
  maxSubscriptionsPerConnection: number;
  /** Ping interval; a socket that does not pong within it is terminated. */
  keepAliveMs: number;
  /** Largest accepted message. */
  maxPayloadBytes: number;
  /** Take the client's address from X-Forwarded-For (TRUST_PROXY). */
  trustProxy: boolean;
  /** Told when a socket or an operation is refused by one of the limits above (metrics). */
  onRateLimited: (limit: 'ws_connections' | 'ws_subscriptions') => void;
}

const DEFAULT_SOCKET_OPTIONS: LiveSocketOptions = {
  trustProxy: false,
  onRateLimited: () => {},
  maxConnectionsPerUser: 50,
  maxSubscriptionsPerConnection: 100,
  keepAliveMs: 12_000,
  maxPayloadBytes: 1024 * 1024,
};

/** How long a socket may stay open without connection_init. */
export const CONNECTION_INIT_WAIT_MS = 3000;

interface Connection {
  authorization: string;
  viewer: Viewer;
  expiryTimer: NodeJS.Timeout | null;
}

/** Why connection_init was refused: the close code and reason to send. */
export interface Refusal {
  code: number;
  reason: string;
}

/** An operation ready to run: parsed, validated, with its context. */
export interface PreparedOperation {
  operation: OperationTypeNode;
  args: ExecutionArgs;
  /** Runs it through yoga's enveloped execute or subscribe; results are pulled only while `socket` keeps up. */
  run(): Promise<Awaited<OperationResult>>;
}

/** What a protocol handler needs from the shared connection logic. */
export interface SocketSessions {
  maxSubscriptionsPerConnection: number;
  keepAliveMs: number;
  onRateLimited: LiveSocketOptions['onRateLimited'];
  /** Authenticates a connection_init payload and registers the socket, or says why not. */
  admit(socket: WebSocket, request: IncomingMessage, params: unknown): Promise<Refusal | null>;
  /** Parses and validates an operation for an admitted socket; GraphQL errors when it cannot run. */
  prepare(socket: WebSocket, request: IncomingMessage, payload: OperationPayload): Promise<PreparedOperation | GraphQLError[]>;
}

export interface OperationPayload {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  extensions?: Record<string, unknown> | null;
}

// setTimeout fires at once past 2^31-1 ms; tokens may live 30 days.
const MAX_TIMER_MS = 2 ** 31 - 1;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The Authorization value in a connection_init payload: the key in any
 * letter case, at the top level or inside a `headers` object (GraphQL
 * Playground and other IDEs send their HTTP headers panel verbatim).
 */
function authorizationOf(params: unknown): string | null {
  if (!isRecord(params)) return null;
  for (const source of [params, params.headers]) {
    if (!isRecord(source)) continue;
    for (const [key, value] of Object.entries(source)) {
      if (key.toLowerCase() === 'authorization' && typeof value === 'string') return value;
    }
  }
  return null;
}

/** Resolves once `ws` holds at most MAX_BUFFERED_BYTES unsent (or is closed). */
async function writable(ws: WebSocket, raw: Socket): Promise<void> {
  while (ws.bufferedAmount > MAX_BUFFERED_BYTES && ws.readyState === WebSocket.OPEN && !raw.destroyed) {
    await new Promise<void>((resolve) => {
      const done = () => {
        raw.off('drain', done);
        raw.off('close', done);
        resolve();
      };
      raw.on('drain', done);
      raw.on('close', done);
    });
  }
}

/**
 * `source`, pulled only while the socket keeps up. A plain iterator, not an
 * async generator: return() must reach the source at once even while a
 * next() waits, so stopping a quiet subscription does not wait for its next event.
 */
function paced<T>(source: AsyncIterable<T>, ws: WebSocket, raw: Socket): AsyncIterableIterator<T> & { return(value?: unknown): Promise<IteratorResult<T>> } {
  const it = source[Symbol.asyncIterator]();
  const paced = {
    async next(): Promise<IteratorResult<T>> {
      await writable(ws, raw);
      return it.next();
    },
    return: (value?: unknown) => (it.return ? it.return(value) : Promise.resolve({ done: true as const, value: undefined })),
    throw: (err?: unknown) => (it.throw ? it.throw(err) : Promise.reject(err)),
    [Symbol.asyncIterator]: () => paced,
  };
  return paced;
}

export interface GraphQLWebSocket {
  /** The HTTP server's 'upgrade' handler: WebSocket on /graphql, 404 elsewhere. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  connectionCount(): number;
  /** Open sockets by subprotocol. */
  connectionsByProtocol(): Record<string, number>;
  /** Closes every socket (1001), terminating those that do not finish the close handshake in time. */
  close(timeoutMs?: number): Promise<void>;
}

export function createGraphQLWebSocket(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  yoga: YogaServerInstance<any, any>,
  services: Services,
  log: Logger,
  options: Partial<LiveSocketOptions> = {},
): GraphQLWebSocket {
  const opts = { ...DEFAULT_SOCKET_OPTIONS, ...options };
  const serverOptions = { noServer: true, maxPayload: opts.maxPayloadBytes, perMessageDeflate: false };
  const modern = new WebSocketServer(serverOptions);
  const legacy = new WebSocketServer({ ...serverOptions, handleProtocols: () => DEPRECATED_GRAPHQL_WS_PROTOCOL });
  // Echoes the client's first subprotocol: a client whose offer gets none
  // fails the handshake and never sees the 4406 close that says why.
  const refused = new WebSocketServer({ noServer: true, maxPayload: 1024, handleProtocols: (offered) => offered.values().next().value ?? false });
  const connections = new WeakMap<WebSocket, Connection>();
  const perUser = new Map<string, Set<WebSocket>>();

  function release(socket: WebSocket) {
    const conn = connections.get(socket);
    if (!conn) return;
    connections.delete(socket);
    if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
    const set = perUser.get(conn.viewer.id);
    set?.delete(socket);
    if (set?.size === 0) perUser.delete(conn.viewer.id);
  }

  // A user's access changed: each of their sockets whose credential no longer counts as it did is closed.
  const offAccess = services.auth.onAccessChange((userId) => {
    for (const socket of perUser.get(userId) ?? []) {
      const conn = connections.get(socket);
      if (!conn) continue;
      void services.auth.revalidate(conn.viewer).then(
        (now) => {
          if (now && sameRights(conn.viewer, now)) return;
          socket.close(CloseCode.Forbidden, now ? 'Forbidden: your role or token scopes changed' : 'Forbidden: token revoked');
        },
        (err: Error) => log.warn('websocket access re-check failed', { userId, err: err.message }),
      );
    }
  });

  function closeAtExpiry(socket: WebSocket, conn: Connection, expiresAt: number) {
    const wait = expiresAt - Date.now();
    conn.expiryTimer = setTimeout(
      () => {
        if (Date.now() < expiresAt) return closeAtExpiry(socket, conn, expiresAt);
        socket.close(CloseCode.Forbidden, 'Forbidden: token expired');
      },
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
    conn.expiryTimer.unref();
  }

  // Bytes the kernel has taken from this socket so far: grows while the peer reads.
  const flushed = (raw: Socket) => raw.bytesWritten - raw.writableLength;

  function keepAlive(ws: WebSocket, raw: Socket) {
    let awaitingPong = false;
    let progress = flushed(raw);
    ws.on('pong', () => (awaitingPong = false));
    const timer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const now = flushed(raw);
      if (awaitingPong && now === progress) return void ws.terminate();
      progress = now;
      if (!awaitingPong) {
        awaitingPong = true;
        ws.ping();
      }
    }, opts.keepAliveMs);
    timer.unref();
    ws.once('close', () => clearInterval(timer));
  }

  // ws closes a socket whose message is over maxPayload with 1009 and no
  // reason (the close frame is sent before any event we could answer);
  // this gives that close its reason.
  function explainOversize(ws: WebSocket) {
    const close = ws.close.bind(ws);
    ws.close = (code?: number, reason?: string | Buffer) =>
      close(code, code === CLOSE_MESSAGE_TOO_BIG && !reason ? `Message too big: at most ${opts.maxPayloadBytes} bytes` : reason);
  }


  const sessions: SocketSessions = {
    maxSubscriptionsPerConnection: opts.maxSubscriptionsPerConnection,
    keepAliveMs: opts.keepAliveMs,
    onRateLimited: opts.onRateLimited,

    async admit(socket, request, params) {
      const authorization = authorizationOf(params);
      const token = bearerToken(authorization);
      const address = clientAddressOf(request, opts.trustProxy);
      let session;
      try {
        session = token ? await services.auth.authenticate(token, address) : null;
      } catch (err) {
        const error = toGraphQLError(err, log);
        if (error.extensions.code !== 'SERVICE_UNAVAILABLE') throw err;
        // 1013 Try Again Later: graphql-ws clients reconnect after it (a 4500 would end them for good).
        return { code: CLOSE_TRY_AGAIN_LATER, reason: error.message };
      }
      if (session && 'problem' in session) return { code: CloseCode.Forbidden, reason: `Forbidden: ${session.problem}` };
      if (!session) return { code: CloseCode.Forbidden, reason: 'Forbidden' };
      if (session.expiresAt <= Date.now()) return { code: CloseCode.Forbidden, reason: 'Forbidden: token expired' };
      if (socket.readyState !== WebSocket.OPEN) return { code: CloseCode.Forbidden, reason: 'Forbidden: socket closed' };
      const userId = session.viewer.id;
      const mine = perUser.get(userId) ?? new Set<WebSocket>();
      if (mine.size >= opts.maxConnectionsPerUser) {
        opts.onRateLimited('ws_connections');
        return { code: CLOSE_TOO_MANY_CONNECTIONS, reason: `Too many connections: at most ${opts.maxConnectionsPerUser} per user` };
      }
      mine.add(socket);
      perUser.set(userId, mine);
      const conn: Connection = { authorization: authorization!, viewer: session.viewer, expiryTimer: null };
      connections.set(socket, conn);
      closeAtExpiry(socket, conn, session.expiresAt);
      socket.once('close', () => release(socket));
      log.debug('websocket connected', { userId, client: address, protocol: socket.protocol });
      return null;
    },

    async prepare(socket, request, payload) {
      const conn = connections.get(socket);
      if (!conn) return [new GraphQLError('Not authenticated', { extensions: { code: 'UNAUTHENTICATED' } })];
      // An operation arrives in a message body, as in a POST: yoga then allows mutations, as graphql-ws does.
      const enveloped = yoga.getEnveloped({
        request: new Request(`http://localhost${WS_PATH}`, { method: 'POST', headers: { authorization: conn.authorization, 'content-type': 'application/json' } }),
        clientAddress: clientAddressOf(request, opts.trustProxy),
        transport: socket.protocol === DEPRECATED_GRAPHQL_WS_PROTOCOL ? 'legacy-ws' : 'graphql-ws',
        params: payload,
      });
      let document;
      try {
        document = enveloped.parse(payload.query);
      } catch (err) {
        if (err instanceof GraphQLError) return [err];
        throw err;
      }
      const errors = enveloped.validate(enveloped.schema, document);
      if (errors.length) return errors as GraphQLError[];
      const operation = getOperationAST(document, payload.operationName)?.operation;
      if (!operation) return [new GraphQLError('Unable to identify operation')];
      let contextValue;
      try {
        // The context factory authenticates again (role and activity from the database).
        contextValue = await enveloped.contextFactory();
      } catch (err) {
        // This operation fails (SERVICE_UNAVAILABLE while the database is down); the socket and its other operations stay.
        return [toGraphQLError(err, log)];
      }
      const args: ExecutionArgs = { schema: enveloped.schema, operationName: payload.operationName, document, variableValues: payload.variables, contextValue };
      const raw = request.socket;
      return {
        operation,
        args,
        async run() {
          const result = (await (operation === 'subscription' ? enveloped.subscribe(args) : enveloped.execute(args))) as Awaited<OperationResult>;
          return Symbol.asyncIterator in result ? paced(result, socket, raw) : result;
        },
      };
    },
  };

  // graphql-ws: onSubscribe prepares; its execute/subscribe run what was prepared for those arguments.
  const prepared = new WeakMap<ExecutionArgs, PreparedOperation>();
  const runPrepared = (args: ExecutionArgs) => prepared.get(args)!.run();
  useServer<Record<string, unknown>>(
    {
      connectionInitWaitTimeout: CONNECTION_INIT_WAIT_MS,
      execute: runPrepared,
      subscribe: runPrepared,

      async onConnect(ctx) {
        const { socket, request } = ctx.extra;
        const refusal = await sessions.admit(socket, request, ctx.connectionParams);
        if (!refusal) return true;
        if (socket.readyState === WebSocket.OPEN) socket.close(refusal.code, refusal.reason);
        return false;
      },

      async onSubscribe(ctx, _id, payload) {
        // ctx.subscriptions already holds this operation.
        if (connections.has(ctx.extra.socket) && Object.keys(ctx.subscriptions).length > opts.maxSubscriptionsPerConnection) {
          opts.onRateLimited('ws_subscriptions');
          return [
            new GraphQLError(`Too many subscriptions on this connection: at most ${opts.maxSubscriptionsPerConnection}; complete some or open another connection`, {
              extensions: { code: 'RATE_LIMITED' },
            }),
          ];
        }
        const op = await sessions.prepare(ctx.extra.socket, ctx.extra.request, payload);
        if (Array.isArray(op)) return op;
        prepared.set(op.args, op);
        return op.args;
      },
    },
    modern,
    0, // keep-alive above
  );
  serveLegacyProtocol(legacy, sessions, log);

  // After useServer's own 'connection' listener, so that its 'error' listener can be replaced.
  for (const wss of [modern, legacy]) {
    wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
      // A socket's 'error' is the client's protocol error (an oversized
      // message, a bad frame) and ws closes the socket itself; graphql-ws
      // would print it to stderr as an internal error.
      ws.removeAllListeners('error');
      ws.on('error', (err) => log.debug('websocket client error', { err: err.message }));
      explainOversize(ws);
      keepAlive(ws, req.socket);
    });
  }

  const upgradeTo = (wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer, then: (ws: WebSocket) => void) =>
    wss.handleUpgrade(req, socket, head, then);

  return {
    handleUpgrade(req, socket, head) {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (path !== WS_PATH) return void socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      const offered = new Set((req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()));
      if (offered.has(GRAPHQL_TRANSPORT_WS_PROTOCOL)) return upgradeTo(modern, req, socket, head, (ws) => modern.emit('connection', ws, req));
      if (offered.has(DEPRECATED_GRAPHQL_WS_PROTOCOL)) return upgradeTo(legacy, req, socket, head, (ws) => legacy.emit('connection', ws, req));
      // A close with a reason tells a browser client more than an HTTP refusal would.
      upgradeTo(refused, req, socket, head, (ws) => {
        ws.on('error', () => {}); // whatever the client sends before the close: ws closes the socket itself
        ws.close(CloseCode.SubprotocolNotAcceptable, `Subprotocol not acceptable: offer ${GRAPHQL_TRANSPORT_WS_PROTOCOL} or ${DEPRECATED_GRAPHQL_WS_PROTOCOL}`);
      });
    },
    connectionCount: () => modern.clients.size + legacy.clients.size,
    connectionsByProtocol: () => ({ [GRAPHQL_TRANSPORT_WS_PROTOCOL]: modern.clients.size, [DEPRECATED_GRAPHQL_WS_PROTOCOL]: legacy.clients.size }),
    async close(timeoutMs = 1000) {
      offAccess();
      const open = [...modern.clients, ...legacy.clients, ...refused.clients];
      await Promise.all(
        open.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === WebSocket.CLOSED) return resolve();
              const timer = setTimeout(() => ws.terminate(), timeoutMs);
              ws.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
              ws.close(1001, 'Server shutting down');
            }),
        ),
      );
      await Promise.all([modern, legacy, refused].map((wss) => new Promise<void>((resolve) => wss.close(() => resolve()))));
    },
  };
}
