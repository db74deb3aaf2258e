// A TCP proxy the chaos run owns, one per (process, backing service): the
// process reaches PostgreSQL or Redis only through it, so the run can cut one
// process's connections without touching the machine's shared servers.
import net from 'node:net';

export interface Proxy {
  readonly port: number;
  /** `target` (a URL) with its host and port replaced by the proxy's. */
  via(target: string): string;
  /** Destroys every current connection; new ones are accepted and destroyed at once until restore(). */
  cut(): void;
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
  let cut = false;
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
    if (cut) return destroy(pair);
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
    cut() {
      cut = true;
      for (const p of [...pairs]) destroy(p);
    },
    reset() {
      for (const p of [...pairs]) destroy(p);
    },
    restore() {
      cut = false;
    },
    get isCut() {
      return cut;
    },
    async close() {
      cut = true;
      for (const p of [...pairs]) destroy(p);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
