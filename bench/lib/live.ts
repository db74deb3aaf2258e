// Live-log clients for the logs and fanout figures: a graphql-ws
// (graphql-transport-ws) jobLog subscriber and an SSE reader of
// GET /jobs/{id}/logs/stream. Both report what arrived and when.
import { request as httpRequest } from 'node:http';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { assertLocal } from './http.js';
import { nowMs } from './stats.js';

export const JOB_LOG = 'subscription JobLog($id: ID!, $after: Int) { jobLog(id: $id, after: $after) { seq stream data } }';

export interface Chunk {
  seq: number;
  stream: string;
  data: string;
}

export interface WsConn {
  client: Client;
  /** Resolves once connection_ack arrived; rejects when the socket closes first. */
  connected: Promise<void>;
  dispose(): Promise<void>;
}

/** A graphql-ws client on `ws` that connects at once and never retries (a failure is a failure). */
export function wsConnect(baseUrl: string, token: string): WsConn {
  assertLocal(baseUrl);
  let ok!: () => void;
  let fail!: (e: Error) => void;
  const connected = new Promise<void>((res, rej) => ((ok = res), (fail = rej)));
  connected.catch(() => {});
  const client = createClient({
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    shouldRetry: () => false,
    onNonLazyError: () => {},
    connectionParams: { authorization: `Bearer ${token}` },
    on: {
      connected: () => ok(),
      closed: (e) => {
        const ev = e as { code?: number; reason?: string };
        fail(new Error(`websocket closed before connection_ack: ${ev.code ?? '?'} ${ev.reason ?? ''}`));
      },
    },
  });
  return { client, connected, dispose: async () => void (await client.dispose()) };
}

/** Subscribes to jobLog; `onChunk` sees each chunk with its receive time; resolves at `complete`. */
export function subscribeJobLog(client: Client, jobId: string, onChunk: (c: Chunk, receivedAt: number) => void): { done: Promise<void>; stop: () => void } {
  let stop!: () => void;
  const done = new Promise<void>((resolve, reject) => {
    stop = client.subscribe<{ jobLog: Chunk }>(
      { query: JOB_LOG, variables: { id: jobId } },
      {
        next: (msg) => {
          const t = nowMs();
          if (msg.errors?.length) return reject(new Error(`jobLog error: ${JSON.stringify(msg.errors).slice(0, 500)}`));
          if (msg.data?.jobLog) onChunk(msg.data.jobLog, t);
        },
        error: (err) => reject(err instanceof Error ? err : new Error(`jobLog failed: ${JSON.stringify(err).slice(0, 500)}`)),
        complete: () => resolve(),
      },
    );
  });
  return { done, stop };
}

/**
 * Follows GET {api}/jobs/{id}/logs/stream with Accept: text/event-stream.
 * Every `data:` line is one line of output; the lines of one event joined
 * with "\n" are the chunk. Resolves after `event: end`.
 */
export function followSse(api: string, token: string, jobId: string, onData: (text: string, receivedAt: number) => void): { done: Promise<{ end: string | null }>; abort: () => void } {
  const u = assertLocal(`${api}/jobs/${jobId}/logs/stream`);
  let abort = () => {};
  const done = new Promise<{ end: string | null }>((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, path: u.pathname, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`GET ${u.pathname}: ${res.statusCode} ${res.headers['content-type']}`));
        }
        if (!/text\/event-stream/.test(String(res.headers['content-type']))) {
          res.destroy();
          return reject(new Error(`GET ${u.pathname}: expected text/event-stream, got ${res.headers['content-type']}`));
        }
        res.setEncoding('utf8');
        let buf = '';
        let end: string | null = null;
        res.on('data', (s: string) => {
          const t = nowMs();
          buf += s;
          let at: number;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            const event = buf.slice(0, at);
            buf = buf.slice(at + 2);
            let name = 'message';
            const data: string[] = [];
            for (const line of event.split('\n')) {
              if (line.startsWith('data:')) data.push(line.slice(line.charCodeAt(5) === 32 ? 6 : 5));
              else if (line.startsWith('event:')) name = line.slice(6).trim();
            }
            if (name === 'end') end = data.join('\n');
            else if (data.length) onData(data.join('\n'), t);
          }
        });
        res.on('end', () => resolve({ end }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    abort = () => req.destroy();
    req.end();
  });
  return { done, abort };
}
