import type { IncomingMessage } from 'node:http';

export class BodyTooLarge extends Error {}

/** Reads the whole body, refusing (without buffering it) anything over `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(new BodyTooLarge());
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        parts.length = 0;
        reject(new BodyTooLarge());
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => !failed && resolve(Buffer.concat(parts)));
    req.on('error', (err) => !failed && reject(err));
  });
}

/**
 * How deep JSON request bodies (REST bodies, GraphQL variables and
 * extensions) and GraphQL documents may nest. Recursive code downstream
 * (validation, JSON.stringify, literal coercion) overflows the stack
 * somewhere past a few thousand levels; no real input comes near this.
 */
export const MAX_NESTING = 64;

/**
 * The deepest bracket nesting of JSON text, or of a GraphQL document when
 * `graphql` is set (then `(` counts too and `#` starts a comment). Iterative,
 * so arbitrary input cannot overflow the stack; strings are skipped, and it
 * stops early once `limit` is passed.
 */
export function nestingDepth(text: string, limit: number, graphql = false): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b || (graphql && c === 0x28)) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x7d || c === 0x5d || (graphql && c === 0x29)) {
      depth--;
    } else if (c === 0x22) {
      if (graphql && text.startsWith('"""', i)) {
        const end = text.indexOf('"""', i + 3);
        i = end < 0 ? text.length : end + 2;
        continue;
      }
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22 || (graphql && d === 0x0a)) break;
      }
    } else if (graphql && c === 0x23) {
      while (i < text.length && text.charCodeAt(i) !== 0x0a) i++;
    }
  }
  return max;
}
