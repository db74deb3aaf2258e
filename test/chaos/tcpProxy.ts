// A TCP proxy a test owns, to give a client (Redis, PostgreSQL, anything over
// TCP) an outage without touching the shared server: the client connects to
// the proxy, and the test cuts and restores the path at will.
//
//   const proxy = await startProxy('127.0.0.1', 6379);
//   const url = proxy.url('redis');            // redis://127.0.0.1:<port>
//   const pgUrl = proxy.via(db.url);           // same URL, host:port replaced
//   proxy.cut();        // current connections destroyed, new ones refused
//   proxy.cut('reset'); // or: new ones accepted and destroyed at once
//   proxy.cut('hold');  // or: connections stay open but nothing flows (a partition)
//   proxy.restore(); // new connections are forwarded again
//   await proxy.close();
import net from 'node:net';

export type CutMode = 'refuse' | 'reset' | 'hold';

export interface TcpProxy {
  /** The local port the proxy listens on (127.0.0.1). */
  port: number;
  /** `scheme://127.0.0.1:<port>` (scheme defaults to 'tcp'); append a path for a database. */
  url(scheme?: string): string;
  /** `target` (a URL such as postgresql://user@host:5432/db) with its host and port replaced by the proxy's. */
  via(target: string): string;
  /**
   * Start an outage. Every mode but 'hold' destroys the current connections.
   * 'refuse' (default): the proxy stops listening, so reconnects fail with
   * ECONNREFUSED as with a stopped server (the port is taken again on
   * restore). 'reset': new connections are accepted and destroyed at once;
   * clients see a successful connect followed by a close, which some (ioredis)
   * count as a successful reconnect, so their retry limits never trip. 'hold': current and new
   * connections stay open but no byte is forwarded either way, so clients see
   * a silent peer (as with a dropped network) until their own timeouts fire.
   */
  cut(mode?: CutMode): void;
  /**
   * End the outage: connections held by a 'hold' cut are destroyed, new
   * connections are forwarded. After a 'refuse' cut the port is listened on
   * again; the returned promise settles once it is (callers may ignore it:
   * a client connecting before then is refused, as during the outage).
   */
  restore(): Promise<void>;
  /** Whether the proxy is currently cut. */
  readonly isCut: boolean;
  /** Number of client connections currently open through the proxy. */
  readonly connections: number;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
}

export async function startProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let cutMode: CutMode | null = null;
  let listening = false;

  const destroyPair = (pair: Pair): void => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  };

  const server = net.createServer((client) => {
    const pair: Pair = { client, upstream: null };
    pairs.add(pair);
    client.on('error', () => destroyPair(pair));
    client.on('close', () => destroyPair(pair));
    if (cutMode === 'reset' || cutMode === 'refuse') {
      destroyPair(pair);
      return;
    }
    if (cutMode === 'hold') {
      // Kept open and unread: the client's writes go nowhere, nothing comes back.
      client.pause();
      return;
    }
    connectUpstream(pair);
  });

  function connectUpstream(pair: Pair): void {
    const upstream = net.connect({ host: targetHost, port: targetPort });
    pair.upstream = upstream;
    upstream.on('error', () => destroyPair(pair));
    upstream.on('close', () => destroyPair(pair));
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
  }

  const listen = (onPort: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(onPort, '127.0.0.1', () => {
        server.off('error', reject);
        listening = true;
        resolve();
      });
    });
  const stopListening = (): Promise<void> => {
    if (!listening) return Promise.resolve();
    listening = false;
    // close() stops accepting at once; its callback waits for open sockets,
    // which the caller destroys.
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };

  await listen(0);
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    url: (scheme = 'tcp') => `${scheme}://127.0.0.1:${port}`,
    via(target: string): string {
      const u = new URL(target);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut(mode: CutMode = 'refuse'): void {
      cutMode = mode;
      if (mode === 'refuse') void stopListening();
      for (const pair of [...pairs]) {
        if (mode !== 'hold') {
          destroyPair(pair);
        } else {
          // Stop the flow both ways without closing either side.
          pair.client.unpipe();
          pair.upstream?.unpipe();
          pair.client.pause();
          pair.upstream?.pause();
        }
      }
    },
    async restore(): Promise<void> {
      // Held connections carry a half-sent conversation; closing them makes
      // the clients reconnect through the restored path.
      if (cutMode === 'hold') for (const pair of [...pairs]) destroyPair(pair);
      cutMode = null;
      if (!listening) await listen(port);
    },
    get isCut() {
      return cutMode !== null;
    },
    get connections() {
      return pairs.size;
    },
    async close(): Promise<void> {
      cutMode = 'reset';
      const stopped = stopListening();
      for (const pair of [...pairs]) destroyPair(pair);
      await stopped;
    },
  };
}
