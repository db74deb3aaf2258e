// GET /jobs/{id}/logs/stream: text/plain and text/event-stream, resuming
// with Last-Event-ID, the same bytes as GET /jobs/{id}/logs, and the usual
// 401/404 before anything is streamed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { getLogs, submit, waitTerminal } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { parseBlock, type SseEvent } from '../helpers/sse.js';

/** Reads an SSE response, calling `onEvent` per event; resolves at the end of the body. Per the SSE rules. */
async function readSse(res: Response, onEvent: (e: SseEvent) => boolean | void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const e = parseBlock(block, Date.now());
      if (!e) continue; // comment only
      if (onEvent(e) === false) {
        await reader.cancel();
        return;
      }
    }
  }
}

const MIXED = ['sh', '-c', 'for i in $(seq 1 300); do echo "out $i"; echo "err $i" >&2; [ $((i % 20)) -eq 0 ] && printf "no newline"; sleep 0.003; done'];

describe.each(PROVIDERS)('log stream on %s', (provider) => {
  let s: TestServer;
  let op: Awaited<ReturnType<TestServer['user']>>;
  let stranger: Awaited<ReturnType<TestServer['user']>>;
  const streamUrl = (id: string) => `${s.api}/jobs/${id}/logs/stream`;
  const sse = (id: string, token: string, extra: Record<string, string> = {}, signal?: AbortSignal) =>
    fetch(streamUrl(id), { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...extra }, signal });

  beforeAll(async () => {
    s = await startServer(provider);
    [op, stranger] = await Promise.all([s.user('operator'), s.user('operator')]);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('SSE from submission to the end: every chunk once in seq order, the same bytes as GET logs, then `end`', async () => {
    const job = await submit(s, op.token, { command: MIXED });
    const res = await sse(job.id, op.token);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events: SseEvent[] = [];
    await readSse(res, (e) => void events.push(e));

    const end = events.pop()!;
    expect(end.event).toBe('end');
    expect(JSON.parse(end.data)).toEqual({ status: 'success', exit_code: 0 });
    expect(events.map((e) => Number(e.id))).toEqual(events.map((_e, i) => i + 1));
    const logs = await getLogs(s, op.token, job.id);
    expect(events.filter((e) => e.event === 'stdout').map((e) => e.data).join('')).toBe(logs.stdout);
    expect(events.filter((e) => e.event === 'stderr').map((e) => e.data).join('')).toBe(logs.stderr);
    expect(logs.stdout).toContain('out 300\n');
  });

  it('Last-Event-ID resumes after that chunk: no duplicates, no gaps', async () => {
    const job = await submit(s, op.token, { command: MIXED });
    const abort = new AbortController();
    const first: SseEvent[] = [];
    const res1 = await sse(job.id, op.token, {}, abort.signal);
    await readSse(res1, (e) => {
      first.push(e);
      if (first.length >= 15) return false;
    }).catch(() => {});
    abort.abort();
    const lastId = first.at(-1)!.id!;
    const second: SseEvent[] = [];
    await readSse(await sse(job.id, op.token, { 'last-event-id': lastId }), (e) => void second.push(e));
    expect(second.pop()!.event).toBe('end');
    const all = [...first, ...second];
    expect(all.map((e) => Number(e.id))).toEqual(all.map((_e, i) => i + 1));
    const logs = await getLogs(s, op.token, job.id);
    expect(all.filter((e) => e.event === 'stdout').map((e) => e.data).join('')).toBe(logs.stdout);
    expect(all.filter((e) => e.event === 'stderr').map((e) => e.data).join('')).toBe(logs.stderr);

    // After the end, resuming from the last id gives just the end event.
    const tail: SseEvent[] = [];
    await readSse(await sse(job.id, op.token, { 'last-event-id': all.at(-1)!.id! }), (e) => void tail.push(e));
    expect(tail.map((e) => e.event)).toEqual(['end']);
  });

  it('text/plain by default: the raw output of both streams in seq order, live and after the end', async () => {
    const job = await submit(s, op.token, { command: MIXED });
    const live = await fetch(streamUrl(job.id), { headers: { authorization: `Bearer ${op.token}` } });
    expect(live.status).toBe(200);
    expect(live.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const liveText = await live.text();
    await waitTerminal(s, op.token, job.id);
    const events: SseEvent[] = [];
    await readSse(await sse(job.id, op.token), (e) => void events.push(e));
    events.pop();
    const inSeqOrder = events.map((e) => e.data).join('');
    expect(liveText).toBe(inSeqOrder);
    const after = await fetch(streamUrl(job.id), { headers: { authorization: `Bearer ${op.token}` } });
    expect(await after.text()).toBe(inSeqOrder);
    const logs = await getLogs(s, op.token, job.id);
    expect(liveText.length).toBe(logs.stdout.length + logs.stderr.length);

    // A stdout-only job: exactly the bytes of GET logs (multi-byte characters included).
    const utf = await submit(s, op.token, { command: ['sh', '-c', 'for i in $(seq 1 50); do echo "ligne $i: é ü 漢字 🎉"; done; printf "end"'] });
    const text = await (await fetch(streamUrl(utf.id), { headers: { authorization: `Bearer ${op.token}` } })).text();
    expect(text).toBe((await getLogs(s, op.token, utf.id)).stdout);
  });

  it('401 without or with a bad token, 404 for a job one may not see or that does not exist', async () => {
    const job = await submit(s, op.token, { command: ['echo', 'private'] });
    const cases: [Record<string, string>, string][] = [
      [{}, 'Bearer'],
      [{ authorization: 'Bearer nope' }, 'Bearer error="invalid_token", error_description="malformed token"'],
    ];
    for (const [headers, challenge] of cases) {
      const res = await fetch(streamUrl(job.id), { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(challenge);
      expect(await res.json()).toEqual({ detail: 'Not authenticated' });
    }
    for (const [id, token] of [[job.id, stranger.token], ['0190a5c1-0000-7000-8000-000000000000', op.token], ['not-an-id', op.token]] as const) {
      const res = await fetch(streamUrl(id), { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toEqual({ detail: 'Job not found' });
    }
    const admin = await fetch(streamUrl(job.id), { headers: { authorization: `Bearer ${s.adminToken}` } });
    expect(await admin.text()).toBe('private\n');
    const post = await fetch(streamUrl(job.id), { method: 'POST', headers: { authorization: `Bearer ${op.token}` } });
    expect(post.status).toBe(405);
  });

  it('is documented in OpenAPI as a stream', async () => {
    const doc = (await s.request('GET', '/openapi.json')).body;
    const op = doc.paths['/api/v1/jobs/{id}/logs/stream'].get;
    expect(Object.keys(op.responses['200'].content)).toEqual(['text/plain', 'text/event-stream']);
    expect(op.responses['401']).toBeDefined();
    expect(op.responses['404']).toBeDefined();
  });
});
