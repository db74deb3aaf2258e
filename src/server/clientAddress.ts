import type { IncomingMessage } from 'node:http';

/**
 * The client's address: the socket's peer; behind a reverse proxy that is
 * trusted (TRUST_PROXY), the address that proxy appended to X-Forwarded-For
 * (the last entry: earlier ones are whatever the client sent).
 */
export function clientAddressOf(req: IncomingMessage, trustProxy: boolean): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (!trustProxy) return peer;
  const header = req.headers['x-forwarded-for'];
  const entries = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
  return entries.at(-1) ?? peer;
}
