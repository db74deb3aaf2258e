// A TCP proxy the chaos run owns, one per (process, backing service): the
// process reaches PostgreSQL or Redis only through it, so the run can cut one
// process's connections without touching the machine's shared servers.
import net from 'node:net';

export interface Proxy {
  readonly port: number;
  /** `target` (a URL) with its host and port replaced by the proxy's. */
  via(target: string): string;
  /**
   * 'reset' (default): destroys every current connection; new ones are accepted and destroyed at once until restore().
   * 'hold': connections stay open but nothing flows either way (a silent partition); restore() then closes them.
   */
  cut(mode?: 'reset' | 'hold'): void;
  /** Destroys every current connection once (the clients reconnect at once). */
  reset(): void;
  restore(): void;
  readonly isCut: boolean;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
}

export async function startProxy(targetHost: string, targetPort: number): Promise<Proxy> {
  const pairs = new Set<Pair>();
  let cut: 'reset' | 'hold' | null = null;
  const destroy = (p: Pair) => {
    pairs.delete(p);
    p.client.destroy();
    p.upstream?.destroy();
  };
  const server = net.createServer((client) => {
    const pair: Pair = { client, upstream: null };
    pairs.add(pair);
    client.on('error', () => destroy(pair));
    client.on('close', () => destroy(pair));
    if (cut === 'reset') return destroy(pair);
    if (cut === 'hold') return void client.pause();
    const upstream = net.connect({ host: targetHost, port: targetPort });
    pair.upstream = upstream;
    upstream.on('error', () => destroy(pair));
    upstream.on('close', () => destroy(pair));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    via(target) {
      const u = new URL(target);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut(mode = 'reset') {
      cut = mode;
      for (const p of [...pairs]) {
        if (mode === 'reset') destroy(p);
        else {
          p.client.unpipe();
          p.upstream?.unpipe();
          p.client.pause();
          p.upstream?.pause();
        }
      }
    },
    reset() {
      for (const p of [...pairs]) destroy(p);
    },
    restore() {
      // Held connections carry half a conversation: closed, so their clients reconnect.
      if (cut === 'hold') for (const p of [...pairs]) destroy(p);
      cut = null;
    },
    get isCut() {
      return cut !== null;
    },
    async close() {
      cut = 'reset';
      for (const p of [...pairs]) destroy(p);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
