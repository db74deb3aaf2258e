// The dashboard's only ways to the server: GraphQL over HTTP (fetch, same
// origin) and subscriptions over one graphql-transport-ws socket. The session
// token lives in sessionStorage (this tab only) and travels in the
// Authorization header and connection_init, never in a cookie.
import { createClient, type Client } from 'graphql-ws';

const TOKEN_KEY = 'jobrunner.token';

export type Role = 'ADMIN' | 'OPERATOR' | 'VIEWER';
export interface Me {
  id: string;
  email: string;
  role: Role;
}

/** A GraphQL error as the API sends it; `issues` carries field-level validation (BAD_USER_INPUT). */
export interface ApiIssue {
  loc: (string | number)[];
  msg: string;
}
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly issues: ApiIssue[] = [],
  ) {
    super(message);
  }
}

type Listener = () => void;
const expiredListeners = new Set<Listener>();

let token: string | null = sessionStorage.getItem(TOKEN_KEY);
let expiryTimer: number | undefined;

export function currentToken(): string | null {
  return token;
}

/** An expiry nobody was listening for yet (a stored token found expired at load). */
let unheardExpiry = false;

/** Called when the session ends (expired, revoked): the app shows sign-in. */
export function onSessionExpired(listener: Listener): () => void {
  expiredListeners.add(listener);
  if (unheardExpiry) {
    unheardExpiry = false;
    listener();
  }
  return () => expiredListeners.delete(listener);
}

function expire(): void {
  if (token === null) return;
  setToken(null);
  if (expiredListeners.size === 0) unheardExpiry = true;
  for (const l of expiredListeners) l();
}

/** Seconds-since-epoch expiry of a JWT, or null when it is not one (API tokens). */
function jwtExpiry(t: string): number | null {
  const part = t.split('.')[1];
  if (!part) return null;
  try {
    const claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp : null;
  } catch {
    return null;
  }
}

const tokenListeners = new Set<Listener>();

/** Called whenever the session token changes (signed in, signed out, expired). */
export function onTokenChange(listener: Listener): () => void {
  tokenListeners.add(listener);
  return () => tokenListeners.delete(listener);
}

export function setToken(next: string | null): void {
  const changed = token !== next;
  token = next;
  window.clearTimeout(expiryTimer);
  if (next) {
    sessionStorage.setItem(TOKEN_KEY, next);
    const exp = jwtExpiry(next);
    // setTimeout fires at once past 2^31-1 ms.
    if (exp !== null) expiryTimer = window.setTimeout(expire, Math.min(2 ** 31 - 1, Math.max(0, exp * 1000 - Date.now())));
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
  // A new identity needs a new socket: the old one authenticated as someone else.
  resetSocket();
  if (changed) for (const l of tokenListeners) l();
}
if (token) setToken(token);

function errorOf(errors: { message: string; extensions?: { code?: string; issues?: ApiIssue[] } }[]): ApiError {
  const first = errors[0]!;
  return new ApiError(errors.map((e) => e.message).join('; '), first.extensions?.code ?? 'ERROR', errors.flatMap((e) => e.extensions?.issues ?? []));
}

/** Runs a query or mutation; throws ApiError. UNAUTHENTICATED with a session ends it. */
export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  } catch {
    throw new ApiError('The server cannot be reached; check that it runs, then retry.', 'NETWORK');
  }
  let body: { data?: T; errors?: { message: string; extensions?: { code?: string; issues?: ApiIssue[] } }[] };
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`The server answered ${res.status} without GraphQL; retry in a moment.`, 'HTTP');
  }
  if (body.errors?.length) {
    const err = errorOf(body.errors);
    if (err.code === 'UNAUTHENTICATED' && token) expire();
    throw err;
  }
  return body.data as T;
}

// ---- subscriptions ----

let client: Client | null = null;
const reconnectListeners = new Set<Listener>();
const socketListeners = new Set<(up: boolean) => void>();

let socketUp = false;

/** Whether the subscription socket is connected now. */
export function isSocketUp(): boolean {
  return socketUp;
}

/** Called with false when the socket drops while in use, true when it is (again) connected. */
export function onSocketState(listener: (up: boolean) => void): () => void {
  socketListeners.add(listener);
  return () => socketListeners.delete(listener);
}

/** Called after the socket came back from a drop: views re-read what events they may have missed. */
function onReconnected(listener: Listener): () => void {
  reconnectListeners.add(listener);
  return () => reconnectListeners.delete(listener);
}

/** Drops the socket (after a change of identity); the next subscription opens a new one. */
function resetSocket(): void {
  const old = client;
  client = null;
  socketUp = false;
  void old?.dispose();
}

const CLOSE_FORBIDDEN = 4403;

function socket(): Client {
  if (client) return client;
  const url = new URL('/graphql', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const c = createClient({
    url: url.href,
    lazy: true,
    lazyCloseTimeout: 3000,
    connectionParams: () => ({ authorization: `Bearer ${token ?? ''}` }),
    retryAttempts: Infinity,
    // 4403: the session is over (expired, revoked); anything else is a network drop worth retrying.
    shouldRetry: (e) => !(e && typeof e === 'object' && 'code' in e && (e as CloseEvent).code === CLOSE_FORBIDDEN),
    retryWait: async (retries) => new Promise((r) => setTimeout(r, Math.min(5000, 300 * 2 ** retries) * (0.75 + Math.random() / 2))),
  });
  c.on('connected', (_socket, _payload, wasRetry) => {
    socketUp = true;
    for (const l of socketListeners) l(true);
    if (wasRetry) for (const l of reconnectListeners) l();
  });
  c.on('closed', (e) => {
    if (c !== client) return;
    socketUp = false;
    const code = e && typeof e === 'object' && 'code' in e ? (e as CloseEvent).code : 0;
    if (code === CLOSE_FORBIDDEN) expire();
    // 1000 with nothing subscribed is the lazy close of an idle socket.
    else if (code !== 1000) for (const l of socketListeners) l(false);
  });
  client = c;
  return c;
}

interface Live<T> {
  next(data: T): void;
  /** The server ended the stream (e.g. a job reached its end). */
  complete?(): void;
  error?(err: ApiError): void;
}

/**
 * Subscribes while the returned function is not called. `variables` is read
 * each time the operation is (re)sent, so a stream that resumes after a drop
 * can say where it left off (jobLog's `after`).
 */
export function subscribe<T>(query: string, variables: () => Record<string, unknown>, sink: Live<T>): () => void {
  const payload = {
    query,
    get variables() {
      return variables();
    },
  };
  let active = true;
  const dispose = socket().subscribe<T>(payload, {
    next: (r) => {
      if (!active) return;
      if (r.errors?.length) {
        const err = errorOf(r.errors as never);
        if (err.code === 'UNAUTHENTICATED') expire();
        sink.error?.(err);
        return;
      }
      if (r.data) sink.next(r.data);
    },
    error: (e) => {
      if (!active) return;
      if (Array.isArray(e)) sink.error?.(errorOf(e as never));
      else sink.error?.(new ApiError('The live connection ended; reload the page to reconnect.', 'SOCKET'));
    },
    complete: () => {
      if (active) sink.complete?.();
    },
  });
  return () => {
    active = false;
    dispose();
  };
}

/**
 * A view kept current by an event stream: subscribes, and calls `reread`
 * after the socket came back from a drop (events sent meanwhile are lost).
 * Returns the function that stops both.
 */
export function follow<T>(query: string, variables: () => Record<string, unknown>, sink: Live<T>, reread: () => void): () => void {
  const stop = subscribe(query, variables, sink);
  const off = onReconnected(reread);
  return () => {
    stop();
    off();
  };
}

// ---- small shared helpers ----

export async function signIn(email: string, password: string): Promise<void> {
  setToken(null);
  const data = await gql<{ login: { accessToken: string } }>('mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }', { e: email, p: password });
  setToken(data.login.accessToken);
}

export async function signOut(): Promise<void> {
  try {
    await gql('mutation { logout }');
  } catch {
    // The session may already be gone; signing out locally is what matters.
  }
  setToken(null);
}
