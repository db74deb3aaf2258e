// submit, ls, show, logs, wait, cancel, purge, stats.
import { basename, resolve } from 'node:path';
import { type Ctx, intOption, str } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { followLog, waitForEnd, type JobRead } from '../follow.js';
import { describeOutcome, jobExitCode } from '../jobExit.js';
import { duration, fields, isTty, paint, printJson, statusLine, statusText, table, when, write } from '../output.js';

/** 422 fields of a job body, as the submit command line names them. */
const SUBMIT_FIELDS = { name: '--name', command: 'CMD', working_dir: '--cwd', env: '--env', timeout_seconds: '--timeout' };

const jobPath = (id: string) => `/jobs/${encodeURIComponent(id)}`;
const notFound = (id: string) => ({ notFound: { what: 'job', id } });

function envOf(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env takes NAME=VALUE, not ${JSON.stringify(pair)}`, 'submit');
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** The server's own wording for output dropped past MAX_LOG_BYTES (as its plain-text stream ends). */
const truncationNote = (stream: string, bytes: number) => `[jobrunner] ${stream} truncated after ${bytes} bytes\n`;

/** Says on stderr (a terminal only: it is the job's stderr too) that the stream is being resumed. */
function reconnectNotice(afterSeq: number) {
  if (isTty(process.stderr)) process.stderr.write(paint(`[jobrunner] connection lost; resuming after chunk ${afterSeq}`, 'yellow', process.stderr) + '\n');
}

/** Streams a job's output here and returns its exit status. */
async function follow(ctx: Ctx, id: string): Promise<number> {
  const job = await followLog(ctx.api, id, {
    output: (stream, data) => write(stream === 'stdout' ? process.stdout : process.stderr, data),
    truncated: (stream, bytes) => write(process.stderr, truncationNote(stream, bytes)),
    reconnecting: reconnectNotice,
  });
  if (isTty(process.stderr)) process.stderr.write(paint(`[jobrunner] job ${job.id} ${describeOutcome(job)} (${duration(job.started_at, job.finished_at)})`, 'gray', process.stderr) + '\n');
  return jobExitCode(job);
}

/** Waits for the job, with a live status line on a terminal; prints the end (or the JSON) and returns its exit status. */
async function waitAndReport(ctx: Ctx, id: string): Promise<number> {
  const line = statusLine();
  const job = await waitForEnd(ctx.api, id, (j) => line.show(`job ${j.id} ${statusText(j.status)} ${j.started_at ? duration(j.started_at, null) : ''}`));
  line.clear();
  if (ctx.json) printJson(job);
  else process.stdout.write(`${job.id} ${statusText(job.status)}${job.exit_code !== null ? ` exit ${job.exit_code}` : ''}${job.error ? `: ${job.error}` : ''}\n`);
  return jobExitCode(job);
}

export async function submit(ctx: Ctx): Promise<number> {
  const v = ctx.values;
  if (v.wait && v.follow) throw new UsageError('--wait and --follow: pick one (--follow waits too)', 'submit');
  if (v.follow && ctx.json) throw new UsageError('--follow prints the job\'s output, not JSON: drop --json (or use --wait --json)', 'submit');
  const command = ctx.positionals;
  const timeout = intOption(v, 'timeout');
  const body = {
    name: str(v, 'name') ?? basename(command[0]!),
    command,
    ...(str(v, 'cwd') !== undefined && { working_dir: resolve(str(v, 'cwd')!) }),
    ...(envOf(v.env as string[] | undefined) && { env: envOf(v.env as string[]) }),
    ...(timeout !== undefined && { timeout_seconds: timeout }),
  };
  const job = await ctx.api.post<JobRead>('/jobs', body, { fields: SUBMIT_FIELDS });
  if (v.follow) return follow(ctx, job.id);
  if (v.wait) return waitAndReport(ctx, job.id);
  if (ctx.json) printJson(job);
  else process.stdout.write(`${job.id}\n`);
  return 0;
}

export async function ls(ctx: Ctx): Promise<number> {
  const q = new URLSearchParams({ order: 'desc', limit: String(intOption(ctx.values, 'limit') ?? 20) });
  if (str(ctx.values, 'status')) q.set('status', str(ctx.values, 'status')!);
  if (str(ctx.values, 'name')) q.set('name', str(ctx.values, 'name')!);
  const jobs = await ctx.api.get<JobRead[]>(`/jobs?${q}`, { fields: { limit: '--limit', name: '--name', status: '--status' } });
  if (ctx.json) return printJson(jobs), 0;
  if (!jobs.length) return process.stderr.write('no jobs\n'), 0;
  const rows = jobs.map((j) => [j.id, statusText(j.status), j.exit_code === null ? '-' : String(j.exit_code), when(j.created_at), duration(j.started_at, j.finished_at), j.name, j.command.join(' ').slice(0, 60)]);
  process.stdout.write(table(['ID', 'STATUS', 'EXIT', 'CREATED', 'TOOK', 'NAME', 'COMMAND'], rows));
  return 0;
}

export async function show(ctx: Ctx): Promise<number> {
  const id = ctx.positionals[0]!;
  const job = await ctx.api.get<JobRead & { env: Record<string, string>; limits: Record<string, number | null>; attempt: number; worker_host: string | null; timeout_seconds: number | null }>(jobPath(id), notFound(id));
  if (ctx.json) return printJson(job), 0;
  const limits = Object.entries(job.limits).map(([k, l]) => `${k}=${l ?? 'unlimited'}`).join(' ');
  process.stdout.write(
    fields([
      ['id', job.id],
      ['name', job.name],
      ['status', `${statusText(job.status)}${job.cancel_requested ? ' (cancel requested)' : ''}`],
      ['exit code', job.exit_code],
      ['error', job.error ?? undefined],
      ['command', JSON.stringify(job.command)],
      ['working dir', job.working_dir],
      ['env', Object.keys(job.env).length ? Object.entries(job.env).map(([k, val]) => `${k}=${val}`).join(' ') : undefined],
      ['timeout', job.timeout_seconds === null ? undefined : `${job.timeout_seconds}s`],
      ['limits', limits],
      ['owner', job.owner_id],
      ['batch', job.batch_id ?? undefined],
      ['created', when(job.created_at)],
      ['started', when(job.started_at)],
      ['finished', when(job.finished_at)],
      ['took', job.started_at ? duration(job.started_at, job.finished_at) : undefined],
      ['attempt', job.attempt],
      ['worker', job.worker_host ?? undefined],
    ]),
  );
  return 0;
}

interface JobLogs {
  stdout: string;
  stderr: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
}

export async function logs(ctx: Ctx): Promise<number> {
  const id = ctx.positionals[0]!;
  if (ctx.values.follow) {
    if (ctx.json) throw new UsageError('-f streams the output, not JSON: drop --json', 'logs');
    return follow(ctx, id);
  }
  const res = await ctx.api.request<JobLogs>('GET', `${jobPath(id)}/logs`, { ...notFound(id), accept: [409] });
  if (res.status === 409) throw new CliError(`job ${id} has not ended yet: \`jobrunner logs -f ${id}\` follows its output`);
  const l = res.body;
  if (ctx.json) return printJson(l), 0;
  await write(process.stdout, l.stdout);
  await write(process.stderr, l.stderr);
  for (const s of ['stdout', 'stderr'] as const) {
    if (l[`${s}_truncated`]) await write(process.stderr, truncationNote(s, Buffer.byteLength(l[s])));
  }
  return 0;
}

export async function wait(ctx: Ctx): Promise<number> {
  return waitAndReport(ctx, ctx.positionals[0]!);
}

export async function cancel(ctx: Ctx): Promise<number> {
  const id = ctx.positionals[0]!;
  const res = await ctx.api.request<JobRead>('POST', `${jobPath(id)}/cancel`, notFound(id));
  const job = res.body;
  if (ctx.json) return printJson(job), 0;
  if (res.status === 202) process.stdout.write(`cancel requested: job ${job.id} is still running; its worker stops it (\`jobrunner wait ${job.id}\`)\n`);
  else if (job.status === 'canceled') process.stdout.write(`canceled job ${job.id}\n`);
  else process.stdout.write(`job ${job.id} had already ended: ${describeOutcome(job)}\n`);
  return 0;
}

export async function purge(ctx: Ctx): Promise<number> {
  const id = ctx.positionals[0]!;
  await ctx.api.request('DELETE', `${jobPath(id)}/purge`, notFound(id));
  process.stdout.write(`purged job ${id}\n`);
  return 0;
}

export async function stats(ctx: Ctx): Promise<number> {
  const s = await ctx.api.get<Record<string, number>>('/jobs/stats');
  if (ctx.json) return printJson(s), 0;
  process.stdout.write(table(['STATUS', 'JOBS'], Object.entries(s).map(([k, n]) => [k === 'total' ? k : statusText(k), String(n)])));
  return 0;
}
