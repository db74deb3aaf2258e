// GraphQL over WebSocket (graphql-transport-ws) on the HTTP server's
// /graphql path. Operations run through yoga's enveloped execute/subscribe,
// so they get the same plugins (error masking, ...) and the same context
// factory as HTTP; every subscribe builds a fresh context, which re-reads the
// caller's role and activity from the database.
//
// Close codes: 4403 "Forbidden" for a missing/bad token in connection_init,
// when the token expires while connected, and when the user's access changes
// (session revoked, password, role or activity changed: announced on every
// process, then re-checked here); 4429 past the per-user
// connection limit; 4408 (graphql-ws) when connection_init does not arrive in
// time. Past the per-connection subscription limit the new operation gets a
// RATE_LIMITED GraphQL error.
//
// Keep-alive: a ping every `keepAliveMs`; a socket that neither answered the
// previous ping nor took any of our bytes since is terminated. (graphql-ws's
// own keep-alive, turned off here, terminates on a late pong alone, which
// kills clients that are alive but still reading a backlog: their pong waits
// behind megabytes of log output.)
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode, type OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';
import type { Viewer } from '../services/deps.js';
import type { Services } from '../services/index.js';
import { sameRights } from '../services/policy.js';
import { clientAddressOf } from './clientAddress.js';
import { bearerToken } from './contextFactory.js';

export const WS_PATH = '/graphql';
export const CLOSE_TOO_MANY_CONNECTIONS = 4429;

export interface LiveSocketOptions {
  maxConnectionsPerUser: number;
  maxSubscriptionsPerConnection: number;
  /** Ping interval; a socket that does not pong within it is terminated. */
  keepAliveMs: number;
  /** Largest accepted message. */
  maxPayloadBytes: number;
  /** Take the client's address from X-Forwarded-For (TRUST_PROXY). */
  trustProxy: boolean;
}

export const DEFAULT_SOCKET_OPTIONS: LiveSocketOptions = {
  trustProxy: false,
  maxConnectionsPerUser: 50,
  maxSubscriptionsPerConnection: 100,
  keepAliveMs: 12_000,
  maxPayloadBytes: 1024 * 1024,
};

interface Connection {
  authorization: string;
  viewer: Viewer;
  expiryTimer: NodeJS.Timeout | null;
}

// setTimeout fires at once past 2^31-1 ms; tokens may live 30 days.
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface GraphQLWebSocket {
  /** The HTTP server's 'upgrade' handler: WebSocket on /graphql, 404 elsewhere. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  connectionCount(): number;
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
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayloadBytes, perMessageDeflate: false });
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
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => keepAlive(ws, req.socket));

  useServer<Record<string, unknown>>(
    {
      execute: (args: ExecutionArgs) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args: ExecutionArgs) => (args.rootValue as Enveloped).subscribe(args),

      async onConnect(ctx) {
        const { socket, request } = ctx.extra;
        const raw = ctx.connectionParams?.authorization;
        const token = typeof raw === 'string' ? bearerToken(raw) : null;
        const session = token ? await services.auth.authenticate(token, clientAddressOf(request, opts.trustProxy)) : null;
        if (session && 'problem' in session) {
          socket.close(CloseCode.Forbidden, `Forbidden: ${session.problem}`);
          return false;
        }
        if (!session || session.expiresAt <= Date.now()) return false; // 4403 Forbidden
        if (socket.readyState !== WebSocket.OPEN) return false;
        const userId = session.viewer.id;
        const mine = perUser.get(userId) ?? new Set<WebSocket>();
        if (mine.size >= opts.maxConnectionsPerUser) {
          socket.close(CLOSE_TOO_MANY_CONNECTIONS, `Too many connections: at most ${opts.maxConnectionsPerUser} per user`);
          return false;
        }
        mine.add(socket);
        perUser.set(userId, mine);
        const conn: Connection = { authorization: raw as string, viewer: session.viewer, expiryTimer: null };
        connections.set(socket, conn);
        closeAtExpiry(socket, conn, session.expiresAt);
        socket.once('close', () => release(socket));
        log.debug('websocket connected', { userId, client: clientAddressOf(request, opts.trustProxy) });
        return true;
      },

      async onSubscribe(ctx, _id, payload) {
        const conn = connections.get(ctx.extra.socket);
        if (!conn) return [new GraphQLError('Not authenticated', { extensions: { code: 'UNAUTHENTICATED' } })];
        // ctx.subscriptions already holds this operation.
        if (Object.keys(ctx.subscriptions).length > opts.maxSubscriptionsPerConnection) {
          return [
            new GraphQLError(`Too many subscriptions on this connection: at most ${opts.maxSubscriptionsPerConnection}; complete some or open another connection`, {
              extensions: { code: 'RATE_LIMITED' },
            }),
          ];
        }
        const enveloped = yoga.getEnveloped({
          request: new Request(`http://localhost${WS_PATH}`, { headers: { authorization: conn.authorization } }),
          clientAddress: clientAddressOf(ctx.extra.request, opts.trustProxy),
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
        const args: ExecutionArgs = {
          schema: enveloped.schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          // The context factory authenticates again (role and activity from the database).
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe } as Enveloped,
        };
        return args;
      },
    },
    wss,
    0, // keep-alive above
  );

  return {
    handleUpgrade(req, socket, head) {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (path !== WS_PATH) return void socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    connectionCount: () => wss.clients.size,
    async close(timeoutMs = 1000) {
      offAccess();
      const open = [...wss.clients];
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
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

// yoga's enveloped execute/subscribe travel to graphql-ws's execute/subscribe in rootValue.
interface Enveloped {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
}
