// Client-side operations on the service's REST API that several figures share.
import { getJson, http, postJson } from './http.js';
import { nowMs, sleep } from './stats.js';

export interface JobRead {
  id: string;
  status: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  error: string | null;
}

export type Stats = Record<'pending' | 'running' | 'success' | 'failed' | 'canceled' | 'total', number>;

export const TERMINAL = new Set(['success', 'failed', 'canceled']);

export async function submit(api: string, token: string, command: string[], name = 'b', extra: Record<string, unknown> = {}): Promise<JobRead> {
  const res = await postJson(`${api}/jobs`, { name, command, ...extra }, token);
  if (res.status !== 202) throw new Error(`POST /jobs: ${res.status} ${res.text.slice(0, 300)}`);
  return res.json<JobRead>();
}

export const stats = (api: string, token: string) => getJson<Stats>(`${api}/jobs/stats`, token);

export const getJob = (api: string, token: string, id: string) => getJson<JobRead>(`${api}/jobs/${id}`, token);

/** Polls /jobs/stats until nothing is pending or running and `total` jobs are terminal; the time that was first seen. */
export async function waitAllTerminal(api: string, token: string, total: number, timeoutMs: number, everyMs = 50): Promise<{ at: number; stats: Stats }> {
  const deadline = Date.now() + timeoutMs;
  let idleSince: number | null = null;
  let lastTerminal = -1;
  for (;;) {
    const s = await stats(api, token);
    const terminal = s.success + s.failed + s.canceled;
    if (terminal >= total && s.pending === 0 && s.running === 0) return { at: nowMs(), stats: s };
    // Pending jobs, nothing running and no progress: the dispatcher stopped claiming
    // (its safety poll runs every second, so 10 s of this is not a slow machine).
    if (s.pending > 0 && s.running === 0 && terminal === lastTerminal) {
      idleSince ??= Date.now();
      if (Date.now() - idleSince > STALL_MS) {
        throw new Error(
          `dispatcher stalled: ${s.pending} jobs pending, none running, no progress for ${STALL_MS / 1000} s (${JSON.stringify(s)}). ` +
            'The worker stopped claiming (see the dispatcher in src/engine/worker.ts).',
        );
      }
    } else idleSince = null;
    lastTerminal = terminal;
    if (Date.now() > deadline) throw new Error(`jobs not terminal within ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await sleep(everyMs);
  }
}

const STALL_MS = 10_000;

/** Every job (admin: everyone's), following X-Next-Cursor. */
export async function listAll(api: string, token: string): Promise<JobRead[]> {
  const out: JobRead[] = [];
  let after: string | undefined;
  for (let page = 0; page < 1000; page++) {
    // 250: pages of 1000 (the documented maximum) exceed the GraphQL complexity limit at the time of writing.
    const q = new URLSearchParams({ limit: '250', ...(after && { after }) });
    const res = await http(`${api}/jobs?${q}`, { headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`GET /jobs: ${res.status} ${res.text.slice(0, 300)}`);
    out.push(...res.json<JobRead[]>());
    const next = res.headers['x-next-cursor'];
    if (typeof next !== 'string' || !next) break;
    after = next;
  }
  return out;
}

/** Runs `fn` for items 0..count-1 with `clients` concurrent workers. */
export async function concurrently(count: number, clients: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(clients, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}
