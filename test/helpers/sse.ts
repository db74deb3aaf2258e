// Reading streamed HTTP responses in tests: the raw body as it arrives (with
// arrival times), parsed as Server-Sent Events when asked, and when/how the
// stream ended. Used for GraphQL over SSE (yoga: POST /graphql with
// `Accept: text/event-stream`, events `next` and `complete`) and for the REST
// log stream. Real fetch, no fakes.

export interface SseEvent {
  /** Date.now() when the event's last byte arrived. */
  at: number;
  id?: string;
  event: string;
  data: string;
}

/** Past this many characters a reader stops keeping the body (a runaway stream must not exhaust the test process). */
export const MAX_KEPT_CHARS = 8 * 1024 * 1024;

export interface StreamReader {
  response: Response;
  /** Characters received in all (kept or not). */
  received(): number;
  /** Pieces of the body as they arrived (decoded), with Date.now() at arrival. */
  pieces: { at: number; text: string }[];
  /** The whole body received so far. */
  text(): string;
  /** SSE events parsed so far (comments and pings left out); empty unless `sse`. */
  events: SseEvent[];
  /** Resolves when the body ends ('done'), or fails or is cut ('error'); never rejects. */
  ended: Promise<'done' | 'error'>;
  isEnded(): boolean;
  /** Date.now() at the end, null while open. */
  endedAt(): number | null;
  /** Stops reading (client side). */
  abort(): void;
}

/** Parses one SSE block (the text between blank lines); null for a comment-only block. */
export function parseBlock(block: string, at: number): SseEvent | null {
  const e: SseEvent = { at, event: 'message', data: '' };
  const data: string[] = [];
  let any = false;
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    any = true;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') data.push(val);
    else if (field === 'event') e.event = val;
    else if (field === 'id') e.id = val;
  }
  if (!any) return null;
  e.data = data.join('\n');
  return e;
}

/**
 * Fetches `url` and reads its body in the background. Resolves once the
 * response headers are in (whatever the status: check `response.status`).
 */
export async function openStream(url: string, init: RequestInit, opts: { sse?: boolean } = {}): Promise<StreamReader> {
  const abort = new AbortController();
  const response = await fetch(url, { ...init, signal: abort.signal });
  const pieces: { at: number; text: string }[] = [];
  const events: SseEvent[] = [];
  let endedAt: number | null = null;
  let buf = '';
  let received = 0;

  const ended = (async (): Promise<'done' | 'error'> => {
    if (!response.body) return 'done';
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'done';
        const at = Date.now();
        received += value.length;
        if (received > MAX_KEPT_CHARS) continue;
        pieces.push({ at, text: value });
        if (!opts.sse) continue;
        buf += value.replace(/\r\n?/g, '\n');
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const e = parseBlock(buf.slice(0, end), at);
          buf = buf.slice(end + 2);
          if (e) events.push(e);
        }
      }
    } catch {
      return 'error';
    } finally {
      endedAt = Date.now();
    }
  })();

  return {
    response,
    received: () => received,
    pieces,
    text: () => pieces.map((p) => p.text).join(''),
    events,
    ended,
    isEnded: () => endedAt !== null,
    endedAt: () => endedAt,
    abort: () => abort.abort(),
  };
}

/**
 * A GraphQL operation over SSE (GraphQL over SSE, "distinct connections"
 * mode as graphql-yoga serves it): POST `{url}/graphql` with
 * `Accept: text/event-stream` and the bearer token. Each result is an event
 * `next` whose data is the JSON ExecutionResult; the end is an event `complete`.
 */
export function graphqlSse(baseUrl: string, token: string | null, query: string, variables: Record<string, unknown> = {}): Promise<StreamReader> {
  return openStream(
    `${baseUrl}/graphql`,
    {
      method: 'POST',
      headers: {
        accept: 'text/event-stream',
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    },
    { sse: true },
  );
}

/** The parsed `next` results of a GraphQL SSE stream. */
export const nextResults = (r: StreamReader): { at: number; result: { data?: any; errors?: any[] } }[] =>
  r.events.filter((e) => e.event === 'next').map((e) => ({ at: e.at, result: JSON.parse(e.data) }));
