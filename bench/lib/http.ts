// A small keep-alive HTTP client on node:http (lighter than fetch, so the
// client costs less of the 2 cores the server also runs on). 127.0.0.1 only.
import { Agent, request as httpRequest } from 'node:http';

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = any>(): T;
}

export function assertLocal(url: string): URL {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost' && u.hostname !== '[::1]') {
    throw new Error(`benches only talk to 127.0.0.1 (got ${u.hostname})`);
  }
  return u;
}

type HttpOptions = { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number };

/**
 * One request. A keep-alive socket the server closed while it sat idle in
 * the pool fails at once with ECONNRESET / "socket hang up" (Node's
 * documented race): such a request is sent once more on a new socket.
 */
export async function http(url: string, opts: HttpOptions = {}): Promise<HttpResponse> {
  try {
    return await once(url, opts);
  } catch (err) {
    if ((err as { reused?: boolean }).reused) return once(url, opts);
    throw err;
  }
}

function once(url: string, opts: HttpOptions): Promise<HttpResponse> {
  const u = assertLocal(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = Buffer.byteLength(opts.body);
    const req = httpRequest(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', headers, agent },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text),
          });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`timeout: ${opts.method ?? 'GET'} ${url}`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const stale = req.reusedSocket && (err.code === 'ECONNRESET' || err.message === 'socket hang up');
      reject(Object.assign(err, { reused: stale }));
    });
    req.end(opts.body);
  });
}

export async function postJson(url: string, body: unknown, token?: string): Promise<HttpResponse> {
  return http(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
}

export async function getJson<T = any>(url: string, token?: string): Promise<T> {
  const res = await http(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${res.text.slice(0, 300)}`);
  return res.json<T>();
}

export function closeHttpAgent(): void {
  agent.destroy();
}
