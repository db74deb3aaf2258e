// A worker process has no API port: with METRICS_PORT it serves /metrics,
// /health and /livez on a listener of its own. A real `worker` process on
// PostgreSQL beside an API-only app: the job is counted where it happened
// (submitted by the API, started and finished by the worker), never twice.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp, type App } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { freePort, REPO_ROOT, submit, waitTerminal, watchChild } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, restClient, testServerEnv, tokenClient, waitFor } from '../helpers/server.js';
import { parsePrometheusText, valueOf } from './promText.js';

const TOKEN = 'worker-metrics-token-0123456789';

describe('the worker process METRICS_PORT listener (PostgreSQL)', () => {
  let db: TestDatabase;
  let api: App;
  let base: string;
  let metricsUrl: string;
  let worker: ReturnType<typeof spawn>;
  let watched: ReturnType<typeof watchChild>;

  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const env = testServerEnv(db, { METRICS_TOKEN: TOKEN, HEARTBEAT_SECONDS: '1' });
    api = await buildApp(loadConfig(env), { log: createLogger('error'), worker: false });
    base = await api.start();
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}`;
    worker = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'worker'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env, METRICS_PORT: String(port), METRICS_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    watched = watchChild(worker);
    await waitFor(async () => {
      if (watched.gone()) throw new Error(`worker exited:\n${watched.output()}`);
      return fetch(`${metricsUrl}/livez`).then((r) => r.ok, () => false);
    }, 45_000, 100);
  }, 60_000);

  afterAll(async () => {
    if (worker && !watched.gone()) {
      worker.kill('SIGTERM');
      await watched.exited;
    }
    await api?.stop(0);
    await db?.drop();
  });

  it('serves /metrics with the token, /health as readiness and /livez; the job is counted once, where it ran', async () => {
    const request = restClient(`${base}/api/v1`);
    const token = await tokenClient(`${base}/api/v1`)(ADMIN_EMAIL, ADMIN_PASSWORD);
    const job = await submit({ request }, token, { command: ['sh', '-c', 'echo hello'] });
    expect((await waitTerminal({ request }, token, job.id)).status).toBe('success');

    expect((await fetch(`${metricsUrl}/metrics`)).status).toBe(401);
    const scrape = async (url: string) => {
      const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(200);
      return parsePrometheusText(await res.text());
    };
    const onWorker = await waitFor(async () => {
      const m = await scrape(metricsUrl);
      return valueOf(m, 'jobrunner_worker_lease_renewals_total', { outcome: 'ok' }) > 0 && valueOf(m, 'jobrunner_jobs_finished_total', { status: 'success' }) === 1 && m;
    });
    expect(valueOf(onWorker, 'jobrunner_jobs_started_total')).toBe(1);
    expect(valueOf(onWorker, 'jobrunner_jobs_submitted_total')).toBe(0);
    expect(valueOf(onWorker, 'jobrunner_log_bytes_stored_total', { stream: 'stdout' })).toBe('hello\n'.length);
    expect(valueOf(onWorker, 'jobrunner_workers', { lease: 'held' })).toBe(1);

    const onApi = await scrape(base);
    expect(valueOf(onApi, 'jobrunner_jobs_submitted_total')).toBe(1);
    expect(valueOf(onApi, 'jobrunner_jobs_started_total')).toBe(0);
    expect(valueOf(onApi, 'jobrunner_jobs_finished_total', { status: 'success' })).toBe(0);

    const health = await fetch(`${metricsUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', database: true, redis: null });
    expect(await (await fetch(`${metricsUrl}/livez`)).json()).toEqual({ status: 'alive' });
    expect((await fetch(`${metricsUrl}/graphql`)).status).toBe(404);
  });
});
