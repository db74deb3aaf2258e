// Figure 2, submit: POST /api/v1/jobs throughput and p99 under autocannon
// (50 connections, 10 s) against `serve --no-worker`, the same for the
// GraphQL submitJob mutation, and a bare node:http JSON server as baseline,
// all in the same run (interleaved, a fresh server per measurement).
import { readFileSync } from 'node:fs';
import { Kind, parse, print, type FragmentDefinitionNode } from 'graphql';
import { join } from 'node:path';
import { cannon, type CannonResult } from './lib/autocannon.js';
import { REPS, pct, runIfMain } from './lib/figure.js';
import { loadSampler } from './lib/machine.js';
import { cpuMs, start, watchdog } from './lib/proc.js';
import { report, type FigureReport } from './lib/report.js';
import { BENCH_DIR, ROOT, freePort, login, profileDirFor, withServer } from './lib/server.js';
import { fmt, median, runs, sleep } from './lib/stats.js';

const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_SUBMIT_SECONDS ?? 10);
const WARMUP_S = 2;
const JOB = { name: 'b', command: ['true'] };

/** The selection the REST route returns (fragment JobFields, nested fields included), so both APIs do the same work. */
function jobFields(): string {
  const document = parse(readFileSync(join(ROOT, 'src', 'rest', 'operations', 'jobs.graphql'), 'utf8'));
  const fragment = document.definitions.find((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === 'JobFields');
  if (!fragment) throw new Error('src/rest/operations/jobs.graphql has no fragment JobFields');
  return print(fragment.selectionSet);
}

const GRAPHQL_BODY = JSON.stringify({
  query: `mutation SubmitJob($input: SubmitJobInput!) { submitJob(input: $input) ${jobFields()} }`,
  variables: { input: JOB },
});

/** A GraphQL error is a 200 too: one request first makes sure the mutation really submits. */
async function checkSubmits(url: string, headers: Record<string, string>, body: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const answer = (await res.json()) as { data?: { submitJob?: { id?: string } }; errors?: unknown };
  if (!answer.data?.submitJob?.id) throw new Error(`graphql: the submitJob mutation does not submit: ${JSON.stringify(answer).slice(0, 300)}`);
}

type Measured = CannonResult & { cpuMsPerReq: number };

/** Warm-up, then the measured run; also the server's CPU time per answered request (robust to a busy machine). */
async function measure(pid: number, url: string, headers: Record<string, string>, body: string): Promise<Measured> {
  await cannon({ url, method: 'POST', headers, body, connections: CONNECTIONS, durationS: WARMUP_S });
  const cpu0 = cpuMs(pid) ?? NaN;
  const r = await cannon({ url, method: 'POST', headers, body, connections: CONNECTIONS, durationS: DURATION_S });
  const cpu1 = cpuMs(pid) ?? NaN;
  return { ...r, cpuMsPerReq: (cpu1 - cpu0) / Math.max(1, r.ok + r.non2xx) };
}

async function ours(kind: 'rest' | 'graphql', rep: number): Promise<Measured> {
  return withServer({ noWorker: true, label: `submit-${kind}`, cpuProfDir: profileDirFor(`submit-${kind}-${rep}`) }, async (s) => {
    const token = await login(s.api);
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const r = kind === 'rest'
      ? await measure(s.pid, `${s.api}/jobs`, headers, JSON.stringify(JOB))
      : await checkSubmits(`${s.url}/graphql`, { ...headers, 'x-graphql-yoga-csrf': '1' }, GRAPHQL_BODY).then(() =>
          measure(s.pid, `${s.url}/graphql`, { ...headers, 'x-graphql-yoga-csrf': '1' }, GRAPHQL_BODY),
        );
    if (r.ok === 0) throw new Error(`${kind}: no 2xx responses (non2xx ${r.non2xx}, errors ${r.errors})`);
    return r;
  });
}

async function baseline(): Promise<Measured> {
  const port = await freePort();
  let ready!: () => void;
  const listening = new Promise<void>((r) => (ready = r));
  const child = start('baseline http', process.execPath, [join(BENCH_DIR, 'baselines', 'http-json.mjs'), String(port)], {
    captureStdout: (b) => b.toString().includes('listening') && ready(),
  });
  try {
    await Promise.race([listening, sleep(15_000).then(() => Promise.reject(new Error('baseline http server did not start')))]);
    return await measure(child.pid, `http://127.0.0.1:${port}/jobs`, { 'content-type': 'application/json' }, JSON.stringify(JOB));
  } finally {
    await child.stop('SIGTERM', 5000);
  }
}

const describe = (rs: Measured[]) => rs.map((r) => `${fmt(r.rps, 0)} req/s p99 ${fmt(r.p99, 0)} ms, ${fmt(r.cpuMsPerReq, 2)} CPU-ms/req${r.non2xx || r.errors ? ` (non-2xx ${r.non2xx}, errors ${r.errors})` : ''}`).join('; ');

export async function submitFigure(): Promise<FigureReport> {
  const stopWatchdog = watchdog('submit', 20 * 60_000);
  const load = loadSampler();
  const rest: Measured[] = [];
  const gql: Measured[] = [];
  const base: Measured[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    process.stdout.write(`submit: run ${rep}/${REPS}: baseline ...`);
    base.push(await baseline());
    process.stdout.write(` ${fmt(base.at(-1)!.rps, 0)} req/s; REST ...`);
    rest.push(await ours('rest', rep));
    process.stdout.write(` ${fmt(rest.at(-1)!.rps, 0)} req/s; GraphQL ...`);
    gql.push(await ours('graphql', rep));
    process.stdout.write(` ${fmt(gql.at(-1)!.rps, 0)} req/s\n`);
  }
  const l = load.stop();
  const restRps = median(rest.map((r) => r.rps));
  const restP99 = median(rest.map((r) => r.p99));
  const gqlRps = median(gql.map((r) => r.rps));
  const gqlP99 = median(gql.map((r) => r.p99));
  const baseRps = median(base.map((r) => r.rps));
  const baseP99 = median(base.map((r) => r.p99));
  stopWatchdog();
  return report({
    load: l,
    alsoOnTheCores: 'autocannon runs on the same 2 cores',
    figure: 'submit',
    notes: [
      `autocannon -c ${CONNECTIONS} -d ${DURATION_S} (after a ${WARMUP_S} s warm-up), server: serve --no-worker, a fresh DATA_DIR per measurement`,
      `REST    POST /api/v1/jobs: ${describe(rest)}`,
      `GraphQL submitJob:        ${describe(gql)}`,
      `baseline bare node:http:  ${describe(base)}`,
      `server CPU per request (median; /proc/<pid>/stat, so it does not depend on what else runs): REST ${fmt(median(rest.map((r) => r.cpuMsPerReq)), 2)} ms, GraphQL ${fmt(median(gql.map((r) => r.cpuMsPerReq)), 2)} ms, baseline ${fmt(median(base.map((r) => r.cpuMsPerReq)), 3)} ms`,
      `runs (req/s): REST ${runs(rest.map((r) => r.rps), 0)}; GraphQL ${runs(gql.map((r) => r.rps), 0)}; baseline ${runs(base.map((r) => r.rps), 0)}`,
    ],
    rows: [
      { metric: 'REST req/s', ours: `${fmt(restRps, 0)} req/s`, baseline: `${fmt(baseRps, 0)} req/s`, ratio: pct(restRps / baseRps), target: '≥ 1,500 req/s', pass: restRps >= 1500 },
      { metric: 'REST p99', ours: `${fmt(restP99, 0)} ms`, baseline: `${fmt(baseP99, 0)} ms`, ratio: `${fmt(restP99 / Math.max(baseP99, 1), 1)}×`, target: '≤ 50 ms', pass: restP99 <= 50 },
      { metric: 'REST vs GraphQL', ours: `${fmt(restRps, 0)} req/s`, baseline: `GraphQL ${fmt(gqlRps, 0)} req/s`, ratio: pct(restRps / gqlRps), target: 'REST ≥ 85% of GraphQL', pass: restRps >= 0.85 * gqlRps },
      { metric: 'GraphQL p99', ours: `${fmt(gqlP99, 0)} ms`, baseline: `${fmt(baseP99, 0)} ms`, ratio: `${fmt(gqlP99 / Math.max(baseP99, 1), 1)}×`, target: '—', pass: null },
    ],
  });
}

runIfMain(import.meta.url, submitFigure);
