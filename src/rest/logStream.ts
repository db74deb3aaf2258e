// GET {prefix}/jobs/{id}/logs/stream: a job's output as it is produced, for
// curl and EventSource. Authorization and the final status go through the
// route's GraphQL document (like every REST route); the chunks come from the
// live service, the same replay-then-follow logic as the jobLog subscription.
//
// text/plain (default): the raw output of both streams in seq order.
// text/event-stream (Accept): per chunk `id: <seq>`, `event: stdout|stderr`
// and one `data:` line per line of output (SSE cannot carry a bare CR: CR and
// CRLF arrive as LF; use text/plain for exact bytes), then `event: end` with
// `{"status", "exit_code"}`. `Last-Event-ID: <seq>` resumes after that chunk.
// When a stream's output was cut at MAX_LOG_BYTES, the end says so: text/plain
// appends one line `[jobrunner] stdout truncated after N bytes` per truncated
// stream (on a line of its own); SSE sends `event: truncated` with
// `{"stream", "bytes"}` before `end`.
//
// Backpressure: the next chunk is only read once res.write() has room again
// ('drain'), and the live service holds a bounded buffer per stream, so a
// slow reader costs at most that buffer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { execute, type DocumentNode, type GraphQLError, type GraphQLSchema } from 'graphql';
import type { Context } from '../graphql/context.js';
import { toGraphQLError } from '../graphql/errors.js';
import type { Logger } from '../logger.js';
import { DomainError } from '../errors.js';
import type { LiveService, LogChunk } from '../services/live.js';
import { notAuthenticated, restError, type RestError } from './errorMapping.js';
import type { JobStreamStatusQuery } from './operations/generated.js';
import type { Route } from './route.js';

const ROUTE_PATH = '/jobs/{id}/logs/stream';
const PATTERN = /^\/jobs\/([^/]+)\/logs\/stream$/;
const HEARTBEAT_MS = 15_000;

type Job = NonNullable<JobStreamStatusQuery['job']>;

export interface LogStreamDeps {
  prefix: string;
  routes: Route[];
  schema: GraphQLSchema;
  live: LiveService;
  contextFor(authorization: string | undefined, clientAddress: string): Promise<Context>;
  log: Logger;
}

/** SSE framing of one chunk: every line of output becomes its own `data:` line. */
export function sseEvent(chunk: Pick<LogChunk, 'seq' | 'stream' | 'data'>): string {
  // One native replace instead of splitting 64 KiB chunks into thousands of line strings.
  const text = chunk.data.includes('\r') ? chunk.data.replace(/\r\n?/g, '\n') : chunk.data;
  return `id: ${chunk.seq}\nevent: ${chunk.stream}\ndata: ${text.replaceAll('\n', '\ndata: ')}\n\n`;
}

function sendJson(res: ServerResponse, e: RestError) {
  const text = JSON.stringify(e.body);
  res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...e.headers }).end(text);
}

/** Resolves once the response can take more (true) or is gone (false). */
function drained(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

export function createLogStream({ prefix, routes, schema, live, contextFor, log }: LogStreamDeps) {
  const route = routes.find((r) => r.stream && r.path === ROUTE_PATH);
  if (!route) throw new Error(`the route table has no stream route ${ROUTE_PATH}`);

  async function status(ctx: Context, id: string): Promise<{ job: Job } | { error: RestError }> {
    const result = await execute({ schema, document: route!.document as DocumentNode, variableValues: route!.variables({ path: { id }, query: undefined, body: undefined }), contextValue: ctx });
    if (result.errors?.length) return { error: restError(toGraphQLError(result.errors[0] as GraphQLError, log)) };
    return { job: (result.data as JobStreamStatusQuery).job };
  }

  /** The streams whose output was cut at the cap, with the bytes kept (the reader's access was checked by `status`). */
  async function truncations(ctx: Context, id: string): Promise<{ stream: 'stdout' | 'stderr'; bytes: number }[]> {
    const row = await ctx.prisma.job.findUnique({ where: { id }, select: { stdoutTruncated: true, stdoutBytes: true, stderrTruncated: true, stderrBytes: true } });
    if (!row) return [];
    const out: { stream: 'stdout' | 'stderr'; bytes: number }[] = [];
    if (row.stdoutTruncated) out.push({ stream: 'stdout', bytes: row.stdoutBytes });
    if (row.stderrTruncated) out.push({ stream: 'stderr', bytes: row.stderrBytes });
    return out;
  }

  /** The job id when `path` (full, with prefix) is the stream route; null otherwise. */
  function match(path: string): string | null {
    if (!path.startsWith(prefix + '/')) return null;
    const m = PATTERN.exec(path.slice(prefix.length));
    if (!m) return null;
    try {
      return decodeURIComponent(m[1]!);
    } catch {
      return '';
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, id: string, clientAddress: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, { status: 405, body: { detail: 'Method Not Allowed' } });
    const ctx = await contextFor(req.headers.authorization, clientAddress);
    if (!ctx.viewer) return sendJson(res, notAuthenticated(ctx.authProblem));
    const before = await status(ctx, id);
    if ('error' in before) return sendJson(res, before.error);

    const sse = /\btext\/event-stream\b/i.test(req.headers.accept ?? '');
    const lastId = req.headers['last-event-id'];
    const after = typeof lastId === 'string' && /^\s*\d{1,10}\s*$/.test(lastId) ? Number(lastId) : 0;
    const headers: Record<string, string> = {
      'content-type': sse ? 'text/event-stream; charset=utf-8' : 'text/plain; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    };
    if (req.method === 'HEAD') return void res.writeHead(200, headers).end();

    let chunks: Awaited<ReturnType<LiveService['followLog']>>;
    try {
      chunks = await live.followLog(ctx.viewer, id, after);
    } catch (err) {
      // Refused before anything was sent (the job's output was removed: 410): a JSON answer like the other routes'.
      if (!(err instanceof DomainError)) throw err;
      return sendJson(res, restError(toGraphQLError(err, log)));
    }
    const stop = () => void chunks.return();
    res.once('close', stop);
    res.writeHead(200, headers);
    res.flushHeaders();

    let heartbeat: NodeJS.Timeout | undefined;
    if (sse) {
      // Comments keep idle proxies from closing the connection; skipped while the client lags.
      heartbeat = setInterval(() => !res.writableNeedDrain && res.write(': keep-alive\n\n'), HEARTBEAT_MS);
      heartbeat.unref();
    }
    let endsLine = true;
    try {
      try {
        for await (const chunk of chunks) {
          if (chunk.data) endsLine = chunk.data.endsWith('\n');
          const ok = res.write(sse ? sseEvent(chunk) : chunk.data);
          if (!ok && !(await drained(res))) return;
        }
      } catch (err) {
        // The reader's access ended mid-stream (logged out, revoked, deactivated): say so and stop.
        if (!(err instanceof DomainError)) throw err;
        if (sse && !res.destroyed) res.write(`event: error\ndata: ${JSON.stringify({ detail: err.message })}\n\n`);
        return void res.end();
      }
      if (res.destroyed) return;
      // Output past MAX_LOG_BYTES was dropped: say so, once per truncated stream.
      for (const t of await truncations(ctx, id)) {
        res.write(sse ? `event: truncated\ndata: ${JSON.stringify(t)}\n\n` : `${endsLine ? '' : '\n'}[jobrunner] ${t.stream} truncated after ${t.bytes} bytes\n`);
        endsLine = true;
      }
      if (sse) {
        const after = await status(ctx, id);
        const end = 'job' in after ? { status: after.job.status.toLowerCase(), exit_code: after.job.exitCode } : { status: null, exit_code: null };
        res.write(`event: end\ndata: ${JSON.stringify(end)}\n\n`);
      }
      res.end();
    } finally {
      clearInterval(heartbeat);
      res.off('close', stop);
      await chunks.return();
    }
  }

  return { match, handle };
}
