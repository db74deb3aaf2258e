// Label cardinality stays bounded however many jobs and users there are: a
// thousand jobs from fifty users add no series beyond those the first user's
// round made, no label carries an id or an email, and client-chosen
// GraphQL operation names stop at the cap.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { parsePrometheusText, seriesOf, type Family } from './promText.js';

const USERS = 50;
const JOBS_PER_USER = 20;
const NAMES_PER_USER = 3;
const OPERATION_NAME_CAP = 100;

async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  return parsePrometheusText(await res.text());
}

// Process metrics (GC kinds, heap spaces) may gain series as the process ages; they carry no request data.
const ours = (series: string) => !/^jobrunner_(nodejs|process)_/.test(series);

describe('label cardinality', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite', {
      METRICS_PUBLIC: 'on',
      JOB_ISOLATION: 'off',
      WORKER_CONCURRENCY: '32',
      DEFAULT_MAX_CONCURRENT_JOBS: '32',
      HEARTBEAT_SECONDS: '1',
    });
  });
  afterAll(async () => s?.stop());

  /** One user's round: created, logged in, a batch of `true` jobs, a job read, named GraphQL queries. */
  async function round(i: number): Promise<{ ids: string[]; email: string; userId: string }> {
    const user = await s.user('operator');
    const batch = await s.request('POST', '/job-batches', {
      token: user.token,
      body: { name: `b${i}`, jobs: Array.from({ length: JOBS_PER_USER }, (_, j) => ({ name: `j${j}`, command: ['true'] })) },
    });
    expect(batch.status).toBe(201);
    const ids = (batch.body.jobs as { id: string }[]).map((j) => j.id);
    expect((await s.request('GET', `/jobs/${ids[0]}`, { token: user.token })).status).toBe(200);
    for (let n = 0; n < NAMES_PER_USER; n++) {
      const r = await s.graphql(`query Probe_${i}_${n} { jobStats { total } }`, {}, user.token);
      expect(r.errors).toBeUndefined();
    }
    return { ids: [...ids, batch.body.id], email: user.email, userId: user.id };
  }

  const finished = async (n: number) =>
    waitFor(async () => (await s.request('GET', '/jobs/stats', { token: s.adminToken })).body.success >= n, 120_000, 200);

  it(`${USERS * JOBS_PER_USER} jobs from ${USERS} users add no series beyond the first user's`, async () => {
    const seen = [await round(0)];
    await finished(JOBS_PER_USER);
    // The baseline once /metrics itself was counted and the worker renewed its lease.
    const first = new Set(
      seriesOf(await waitFor(async () => {
        const m = await scrape(s.url);
        return (m.get('jobrunner_worker_lease_renewals_total')?.samples.length ?? 0) > 0 && m.get('jobrunner_http_requests_total')!.samples.some((x) => x.labels.route === '/metrics') && m;
      })).filter(ours),
    );

    for (let i = 1; i < USERS; i += 7) {
      seen.push(...(await Promise.all(Array.from({ length: Math.min(7, USERS - i) }, (_, k) => round(i + k)))));
    }
    await finished(USERS * JOBS_PER_USER);
    const after = await scrape(s.url);
    expect(after.get('jobrunner_jobs_finished_total')!.samples.find((x) => x.labels.status === 'success')!.value).toBe(USERS * JOBS_PER_USER);

    const isGraphQL = (series: string) => series.startsWith('jobrunner_graphql_');
    const added = seriesOf(after).filter(ours).filter((x) => !first.has(x) && !isGraphQL(x));
    expect(added).toEqual([]);

    // No label value names a job, a batch, a user or an email.
    const values = [...after.values()].flatMap((f) => f.samples.flatMap((x) => Object.values(x.labels)));
    const secrets = seen.flatMap((u) => [...u.ids, u.userId, u.email]);
    expect(values.filter((v) => secrets.some((id) => v.includes(id)))).toEqual([]);

    // Client-chosen operation names: at most the cap, then 'other'.
    const probes = new Set(after.get('jobrunner_graphql_operations_total')!.samples.map((x) => x.labels.operation!).filter((o) => o.startsWith('Probe_')));
    expect(probes.size).toBe(OPERATION_NAME_CAP);
    expect(after.get('jobrunner_graphql_operations_total')!.samples.some((x) => x.labels.operation === 'other')).toBe(true);
  }, 180_000);
});
