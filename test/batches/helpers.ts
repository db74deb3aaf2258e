// Shared pieces of the batch suites: typed REST shapes, polling helpers,
// gate files that hold a job running until the test lets it go, and
// process-group probes for "nothing of the job is left running".
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { waitFor, type TestServer } from '../helpers/server.js';

import { ISO_Z, JOB_READ_KEYS, jobGate, jobGroup, TERMINAL } from '../helpers/jobs.js';
import type * as Jobs from '../helpers/jobs.js';

export { ISO_Z, maxOverlap, TERMINAL } from '../helpers/jobs.js';

export const JOB_KEYS = [...JOB_READ_KEYS].sort();
export const BATCH_KEYS = ['created_at', 'description', 'id', 'job_counts', 'name', 'owner_id', 'status'].sort();
export const BATCH_WITH_JOBS_KEYS = [...BATCH_KEYS, 'jobs'].sort();
export const STATS_KEYS = ['canceled', 'failed', 'pending', 'running', 'success', 'total'].sort();

export type JobStatus = 'pending' | 'running' | 'success' | 'failed' | 'canceled';

/** JobRead, one definition for every suite. */
export type JobRead = Jobs.JobRead;

export interface Counts { pending: number; running: number; success: number; failed: number; canceled: number; total: number }

export interface BatchRead {
  id: string; name: string; description: string | null; owner_id: string; created_at: string;
  status: JobStatus; job_counts: Counts; jobs?: JobRead[];
}

export type User = Awaited<ReturnType<TestServer['user']>>;

/** Expected job_counts from a partial count (missing keys are 0, total is the sum). */
export function counts(c: Partial<Omit<Counts, 'total'>>): Counts {
  const full = { pending: 0, running: 0, success: 0, failed: 0, canceled: 0, ...c };
  return { ...full, total: full.pending + full.running + full.success + full.failed + full.canceled };
}

export function countJobs(jobs: JobRead[]): Counts {
  const c: Partial<Omit<Counts, 'total'>> = {};
  for (const j of jobs) c[j.status] = (c[j.status] ?? 0) + 1;
  return counts(c);
}

export async function createBatch(s: TestServer, token: string, body: unknown): Promise<BatchRead> {
  const res = await s.request('POST', '/job-batches', { token, body });
  if (res.status !== 201) throw new Error(`create batch: ${res.status} ${res.text}`);
  return res.body as BatchRead;
}

export async function getBatch(s: TestServer, token: string, id: string): Promise<BatchRead> {
  const res = await s.request('GET', `/job-batches/${id}`, { token });
  if (res.status !== 200) throw new Error(`get batch: ${res.status} ${res.text}`);
  return res.body as BatchRead;
}

export async function getJob(s: TestServer, token: string, id: string): Promise<JobRead> {
  const res = await s.request('GET', `/jobs/${id}`, { token });
  if (res.status !== 200) throw new Error(`get job: ${res.status} ${res.text}`);
  return res.body as JobRead;
}

/** Polls the batch until `pred` holds; returns that state. */
export async function waitBatch(s: TestServer, token: string, id: string, pred: (b: BatchRead) => boolean, timeoutMs = 20_000): Promise<BatchRead> {
  let last: BatchRead | undefined;
  try {
    return await waitFor(async () => {
      last = await getBatch(s, token, id);
      return pred(last) && last;
    }, timeoutMs, 50);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last batch state: ${describeBatch(last)}`);
  }
}

function describeBatch(b: BatchRead | undefined): string {
  if (!b) return 'none';
  const live = (b.jobs ?? []).filter((j) => !TERMINAL.includes(j.status)).slice(0, 5).map((j) => `${j.name}:${j.status}`);
  return JSON.stringify({ status: b.status, job_counts: b.job_counts, first_live_jobs: live });
}

/**
 * Waits for every job of a (big) batch to end, polling the light list
 * endpoint (no jobs). Fails early when nothing moves for `stallMs`: a
 * scheduler that stopped is a failure, not slowness.
 */
export async function waitAllDone(s: TestServer, token: string, id: string, opts: { stallMs?: number; capMs?: number } = {}): Promise<Counts> {
  const stallMs = opts.stallMs ?? 15_000;
  const deadline = Date.now() + (opts.capMs ?? 240_000);
  let last = '';
  let lastChange = Date.now();
  for (;;) {
    const { items } = await listAll<BatchRead>(s, token, '/job-batches', 1000);
    const b = items.find((x) => x.id === id);
    if (!b) throw new Error(`batch ${id} is not listed`);
    const c = b.job_counts;
    if (c.pending === 0 && c.running === 0) return c;
    const key = JSON.stringify(c);
    if (key !== last) {
      last = key;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) {
      throw new Error(`batch ${id} made no progress for ${stallMs} ms: job_counts ${key}`);
    }
    if (Date.now() > deadline) throw new Error(`batch ${id} not done in time: job_counts ${key}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function waitJob(s: TestServer, token: string, id: string, pred: (j: JobRead) => boolean, timeoutMs = 20_000): Promise<JobRead> {
  let last: JobRead | undefined;
  try {
    return await waitFor(async () => {
      last = await getJob(s, token, id);
      return pred(last) && last;
    }, timeoutMs, 50);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last job state: ${JSON.stringify(last)}`);
  }
}

export const isDone = (b: BatchRead) => b.job_counts.pending === 0 && b.job_counts.running === 0;

/** Follows X-Next-Cursor through every page of a list endpoint. */
export async function listAll<T>(s: TestServer, token: string, path: string, limit: number): Promise<{ items: T[]; pages: number[] }> {
  const items: T[] = [];
  const pages: number[] = [];
  let after: string | null = null;
  for (let guard = 0; guard < 10_000; guard++) {
    const sep = path.includes('?') ? '&' : '?';
    const url = `${path}${sep}limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
    const res = await s.request('GET', url, { token });
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${res.text}`);
    items.push(...(res.body as T[]));
    pages.push((res.body as T[]).length);
    after = res.headers.get('x-next-cursor');
    if (!after) return { items, pages };
  }
  throw new Error('paging did not end');
}

/** A command that keeps running until `gatePath` exists, then exits with `code`. */
export function gated(gatePath: string, code = 0): string[] {
  return ['sh', '-c', `while [ ! -e '${gatePath}' ]; do sleep 0.05; done; exit ${code}`];
}

export function openGate(gatePath: string): void {
  writeFileSync(gatePath, 'go');
}

/** A fresh gate for gated(): not under DATA_DIR, which isolated jobs cannot see (jobGate in helpers/jobs.ts). */
export function newGate(label = 'gate'): string {
  return jobGate(label);
}

/** Waits with a background child: the job's processes, found with pgidOf. */
export const SLEEPER = ['sh', '-c', 'sleep 300 & sleep 300'];

export function runDir(s: TestServer, jobId: string): string {
  return join(s.db.dataDir, 'runs', jobId);
}

/** A running job's process group on the host (its init's pid), from its cgroup (jobGroup in helpers/jobs.ts). */
export const pgidOf = (jobId: string): Promise<number> => jobGroup(jobId, 20_000);

/** True while any process of the group exists (kill(-pgid, 0) does not fail with ESRCH). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code === 'EPERM') return true;
    throw err;
  }
}

export function expectJobRead(job: JobRead, expected: { batchId: string; ownerId: string }): void {
  expect(Object.keys(job).sort()).toEqual(JOB_KEYS);
  expect(job.batch_id).toBe(expected.batchId);
  expect(job.owner_id).toBe(expected.ownerId);
  expect(job.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  expect(job.created_at).toMatch(ISO_Z);
  expect(['pending', 'running', 'success', 'failed', 'canceled']).toContain(job.status);
}

export function expectBatchRead(batch: BatchRead, withJobs: boolean): void {
  expect(Object.keys(batch).sort()).toEqual(withJobs ? BATCH_WITH_JOBS_KEYS : BATCH_KEYS);
  expect(Object.keys(batch.job_counts).sort()).toEqual(STATS_KEYS);
  expect(batch.created_at).toMatch(ISO_Z);
  for (const v of Object.values(batch.job_counts)) expect(Number.isInteger(v)).toBe(true);
}

/** A batch body of `n` jobs named j0..j{n-1}. */
export function manyJobs(n: number, command: string[], prefix = 'j'): { name: string; command: string[] }[] {
  return Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, command }));
}
