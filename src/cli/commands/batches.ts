// batch submit, ls, show, cancel.
import { readFileSync } from 'node:fs';
import { type Ctx, intOption, str } from '../context.js';
import { CliError } from '../errors.js';
import type { JobRead } from '../follow.js';
import { duration, printJson, statusText, table, when } from '../output.js';

interface BatchRead {
  id: string;
  name: string;
  description: string | null;
  owner_id: string;
  created_at: string;
  status: string;
  job_counts: Record<string, number>;
  jobs?: JobRead[];
}

const batchPath = (id: string) => `/job-batches/${encodeURIComponent(id)}`;
const notFound = (id: string) => ({ notFound: { what: 'batch', id } });

async function readInput(file: string): Promise<string> {
  if (file !== '-') {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const counts = (b: BatchRead) => ['pending', 'running', 'success', 'failed', 'canceled'].filter((s) => b.job_counts[s]).map((s) => `${b.job_counts[s]} ${s}`).join(', ');

function printBatch(b: BatchRead) {
  process.stdout.write(`batch ${b.id} ${JSON.stringify(b.name)}: ${statusText(b.status)} (${b.job_counts.total} jobs${counts(b) ? `: ${counts(b)}` : ''})\n`);
  if (b.description) process.stdout.write(`${b.description}\n`);
  if (b.jobs?.length) {
    const rows = b.jobs.map((j) => [j.id, statusText(j.status), j.exit_code === null ? '-' : String(j.exit_code), duration(j.started_at, j.finished_at), j.name]);
    process.stdout.write(table(['ID', 'STATUS', 'EXIT', 'TOOK', 'NAME'], rows));
  }
}

export async function batchSubmit(ctx: Ctx): Promise<number> {
  const file = ctx.positionals[0]!;
  const text = await readInput(file);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${file === '-' ? 'stdin' : file} is not JSON: ${(err as Error).message}`);
  }
  const batch = await ctx.api.post<BatchRead>('/job-batches', body);
  if (ctx.json) return printJson(batch), 0;
  printBatch(batch);
  return 0;
}

export async function batchLs(ctx: Ctx): Promise<number> {
  const q = new URLSearchParams({ order: 'desc', limit: String(intOption(ctx.values, 'limit') ?? 20) });
  if (str(ctx.values, 'name')) q.set('name', str(ctx.values, 'name')!);
  const batches = await ctx.api.get<BatchRead[]>(`/job-batches?${q}`, { fields: { limit: '--limit', name: '--name' } });
  if (ctx.json) return printJson(batches), 0;
  if (!batches.length) return process.stderr.write('no batches\n'), 0;
  process.stdout.write(table(['ID', 'STATUS', 'JOBS', 'CREATED', 'NAME'], batches.map((b) => [b.id, statusText(b.status), String(b.job_counts.total), when(b.created_at), b.name])));
  return 0;
}

export async function batchShow(ctx: Ctx): Promise<number> {
  const id = ctx.positionals[0]!;
  const batch = await ctx.api.get<BatchRead>(batchPath(id), notFound(id));
  if (ctx.json) return printJson(batch), 0;
  printBatch(batch);
  return 0;
}

export async function batchCancel(ctx: Ctx): Promise<number> {
  const id = ctx.positionals[0]!;
  const batch = await ctx.api.post<BatchRead>(`${batchPath(id)}/cancel`, undefined, notFound(id));
  if (ctx.json) return printJson(batch), 0;
  printBatch(batch);
  const unconfirmed = (batch.jobs ?? []).filter((j) => j.status === 'running' && j.cancel_requested).length;
  if (unconfirmed) process.stdout.write(`cancel requested: ${unconfirmed} job(s) still running; their workers stop them (\`jobrunner batch show ${batch.id}\`)\n`);
  return 0;
}
