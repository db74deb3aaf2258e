// Following a job: its output over the SSE log stream, resumed after a
// dropped connection from the last chunk received (Last-Event-ID), so no
// chunk is written twice or skipped; and waiting for its end.
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, EXIT } from './errors.js';
import type { Api } from './http.js';
import { sseEvents } from './sse.js';

/** How long a follower keeps trying to reach the server again before giving up. */
const RETRY_FOR_MS = 60_000;

/**
 * How long a follower waits on a silent connection (a dropped network that
 * closed nothing) before it reconnects: the log stream sends a heartbeat
 * every 15 s, so 45 s is three missed ones. JOBRUNNER_IDLE_TIMEOUT (seconds) sets it.
 */
function idleMs(): number {
  const s = Number(process.env.JOBRUNNER_IDLE_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 45_000;
}

/** `body`'s chunks; `abort` is called when none arrives for `ms`. */
async function* watchdog(body: AsyncIterable<Uint8Array>, ms: number, abort: () => void): AsyncGenerator<Uint8Array> {
  let timer = setTimeout(abort, ms);
  try {
    for await (const chunk of body) {
      clearTimeout(timer);
      yield chunk;
      timer = setTimeout(abort, ms);
    }
  } finally {
    clearTimeout(timer);
  }
}
const TERMINAL = ['success', 'failed', 'canceled'];
const MAX_EARLY_CLOSES = 10;

export interface JobRead {
  id: string;
  name: string;
  command: string[];
  status: string;
  exit_code: number | null;
  error: string | null;
  owner_id: string;
  batch_id: string | null;
  working_dir: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  cancel_requested: boolean;
  [key: string]: unknown;
}

export interface FollowHandlers {
  output(stream: 'stdout' | 'stderr', data: string): Promise<void>;
  /** The server kept only the first `bytes` of `stream` (MAX_LOG_BYTES). */
  truncated(stream: string, bytes: number): Promise<void>;
  /** The connection dropped; the follower is reconnecting. */
  reconnecting?(afterSeq: number): void;
}

/** Retries `attempt` while the server cannot be reached (or answers 502-504), for up to RETRY_FOR_MS since the last success. */
class Retrier {
  private since = Date.now();
  private delay = 250;

  ok() {
    this.since = Date.now();
    this.delay = 250;
  }

  /** Waits before the next try, or throws `err` when the time is up. */
  async again(err: CliError): Promise<void> {
    if (Date.now() - this.since > RETRY_FOR_MS) throw err;
    await sleep(this.delay);
    this.delay = Math.min(this.delay * 2, 2000);
  }
}

const retryable = (err: unknown) => err instanceof CliError && err.exitCode === EXIT.unreachable;

/** Streams the job's output to `on.output` until the job ends; resolves with the job as it ended. */
export async function followLog(api: Api, id: string, on: FollowHandlers): Promise<JobRead> {
  const retry = new Retrier();
  let after = 0;
  /** Streams in a row that closed cleanly before their end with nothing new: a loop to break. */
  let earlyCloses = 0;
  // A resumed stream repeats its truncation notices: say each once.
  const announced = new Set<string>();
  for (;;) {
    let ended = false;
    const idle = new AbortController();
    const silence = setTimeout(() => idle.abort(), idleMs());
    try {
      const res = await api.raw('GET', `/jobs/${encodeURIComponent(id)}/logs/stream`, {
        headers: { accept: 'text/event-stream', ...(after > 0 && { 'last-event-id': String(after) }) },
        accept: [502, 503, 504],
        notFound: { what: 'job', id },
        signal: idle.signal,
      });
      clearTimeout(silence);
      if (res.status >= 500) {
        await res.body?.cancel();
        throw new CliError(`${api.target.server} answered ${res.status}`, EXIT.unreachable);
      }
      retry.ok();
      // Node's web streams are async iterable; the DOM-less type declarations do not say so.
      for await (const ev of sseEvents(watchdog(res.body as unknown as AsyncIterable<Uint8Array>, idleMs(), () => idle.abort()))) {
        earlyCloses = 0;
        if (ev.event === 'stdout' || ev.event === 'stderr') {
          const seq = Number(ev.id);
          if (seq <= after) continue; // already written before a reconnect
          await on.output(ev.event, ev.data);
          after = seq;
        } else if (ev.event === 'error') {
          const detail = (JSON.parse(ev.data) as { detail?: string }).detail;
          throw new CliError(`the server ended the log stream: ${detail ?? ev.data}; run \`jobrunner login\` if your session ended`, EXIT.auth);
        } else if (ev.event === 'truncated') {
          const t = JSON.parse(ev.data) as { stream: string; bytes: number };
          if (!announced.has(t.stream)) await on.truncated(t.stream, t.bytes);
          announced.add(t.stream);
        } else if (ev.event === 'end') {
          ended = true;
        }
      }
    } catch (err) {
      clearTimeout(silence);
      if (err instanceof CliError && !retryable(err)) throw err;
      // A body cut mid-stream rejects with a TypeError ('terminated'); treat it like a refused connection.
      const why = err instanceof CliError ? err : api.unreachable(err);
      on.reconnecting?.(after);
      await retry.again(why);
      continue;
    }
    if (ended) return finalJob(api, id, retry);
    // The stream closed without its `end` event: the connection was cut cleanly. Resume.
    if (++earlyCloses > MAX_EARLY_CLOSES) throw new CliError(`the log stream of job ${id} keeps closing before the job's end (${earlyCloses} times in a row): is a proxy cutting it?`);
    on.reconnecting?.(after);
    await retry.again(new CliError(`the log stream of job ${id} keeps closing early`, EXIT.unreachable));
  }
}

async function finalJob(api: Api, id: string, retry: Retrier): Promise<JobRead> {
  for (;;) {
    try {
      return await api.get<JobRead>(`/jobs/${encodeURIComponent(id)}`, { notFound: { what: 'job', id }, signal: AbortSignal.timeout(idleMs()) });
    } catch (err) {
      if (!retryable(err)) throw err;
      await retry.again(err as CliError);
    }
  }
}

/** Polls the job until it has ended (100 ms, growing to 1 s between looks); `tick` sees each state. */
export async function waitForEnd(api: Api, id: string, tick?: (job: JobRead) => void): Promise<JobRead> {
  const retry = new Retrier();
  let delay = 100;
  for (;;) {
    let job: JobRead;
    try {
      job = await api.get<JobRead>(`/jobs/${encodeURIComponent(id)}`, { notFound: { what: 'job', id }, signal: AbortSignal.timeout(idleMs()) });
      retry.ok();
    } catch (err) {
      if (!retryable(err)) throw err;
      await retry.again(err as CliError);
      continue;
    }
    tick?.(job);
    if (TERMINAL.includes(job.status)) return job;
    await sleep(delay);
    delay = Math.min(delay * 1.5, 1000);
  }
}
