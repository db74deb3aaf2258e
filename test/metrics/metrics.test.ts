// /metrics as Prometheus reads it: the exposition parses strictly, the
// counters move as real jobs run, live views show up by transport and go
// away when they end, and nothing is exposed on the API port unless a
// token or an explicit opt-in says so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { getLogs, submit, waitRunning, waitTerminal } from '../helpers/jobs.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import WebSocket from 'ws';
import { track, wsClient, wsUrl, JOB_UPDATED } from '../helpers/ws.js';
import { parsePrometheusText, valueOf, type Family } from './promText.js';

const TOKEN = 'metrics-token-0123456789abcdef';

export async function scrape(base: string, token: string | null = TOKEN): Promise<Map<string, Family>> {
  const res = await fetch(`${base}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${text}`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(text);
}

describe('metrics on the API port', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite', { METRICS_TOKEN: TOKEN, MAX_LOG_BYTES: '1024' });
  });
  afterAll(async () => s?.stop());

  it('parses strictly and its counters move as jobs run, are submitted and fail', async () => {
    const before = await scrape(s.url);
    // Process metrics from prom-client, under the service's prefix.
    for (const name of ['jobrunner_process_cpu_user_seconds_total', 'jobrunner_process_resident_memory_bytes', 'jobrunner_nodejs_eventloop_lag_seconds']) {
      expect(before.has(name), name).toBe(true);
    }

    const refused = await s.request('POST', '/auth/token', { raw: 'username=admin@example.com&password=wrong-password', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(refused.status).toBe(401);

    const op = await s.user('operator');
    const jobs = await Promise.all([
      submit(s, op.token, { command: ['true'] }),
      submit(s, op.token, { command: ['sh', '-c', 'exit 3'] }),
      submit(s, op.token, { command: ['no-such-program-xyz'] }),
      submit(s, op.token, { command: ['sh', '-c', 'head -c 5000 /dev/zero'] }),
    ]);
    const batch = await s.request('POST', '/job-batches', { token: op.token, body: { name: 'b', jobs: [{ name: 'a', command: ['true'] }, { name: 'b', command: ['true'] }] } });
    expect(batch.status).toBe(201);
    const ids = [...jobs.map((j) => j.id), ...(batch.body.jobs as { id: string }[]).map((j) => j.id)];
    const done = await Promise.all(ids.map((id) => waitTerminal(s, op.token, id)));
    expect(done.map((j) => j.status)).toEqual(['success', 'failed', 'failed', 'success', 'success', 'success']);
    expect((await getLogs(s, op.token, jobs[3]!.id)).stdout_truncated).toBe(true);
    const stats = await s.graphql('query MyJobStats { jobStats { total } }', {}, op.token);
    expect(stats.errors).toBeUndefined();

    const after = await scrape(s.url);
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);
    expect(delta('jobrunner_jobs_submitted_total')).toBe(6);
    expect(delta('jobrunner_jobs_started_total')).toBe(5);
    expect(delta('jobrunner_job_spawn_failures_total')).toBe(1);
    expect(delta('jobrunner_jobs_finished_total', { status: 'success' })).toBe(4);
    expect(delta('jobrunner_jobs_finished_total', { status: 'failed' })).toBe(2);
    expect(delta('jobrunner_job_queue_wait_seconds_count')).toBe(5);
    expect(delta('jobrunner_job_run_duration_seconds_count', { status: 'success' })).toBe(4);
    // 5000 bytes written, 1024 kept.
    expect(delta('jobrunner_log_bytes_dropped_total', { stream: 'stdout' })).toBe(5000 - 1024);
    expect(delta('jobrunner_log_bytes_stored_total', { stream: 'stdout' })).toBe(1024);
    expect(delta('jobrunner_log_streams_truncated_total', { stream: 'stdout' })).toBe(1);
    expect(delta('jobrunner_login_failures_total')).toBe(1);
    // Requests by route template, never by raw path.
    expect(delta('jobrunner_http_requests_total', { method: 'POST', route: '/api/v1/jobs', status: '202' })).toBe(4);
    expect(delta('jobrunner_http_requests_total', { method: 'GET', route: '/api/v1/jobs/{id}', status: '200' })).toBeGreaterThanOrEqual(6);
    expect(delta('jobrunner_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/auth/token' })).toBeGreaterThanOrEqual(2);
    const httpRoutes = after.get('jobrunner_http_requests_total')!.samples.map((x) => x.labels.route!);
    for (const id of ids) expect(httpRoutes.some((r) => r.includes(id))).toBe(false);
    // GraphQL by operation name: the client's own and the REST routes' (SubmitJob runs under POST /jobs).
    expect(delta('jobrunner_graphql_operations_total', { operation: 'MyJobStats', type: 'query', outcome: 'ok' })).toBe(1);
    expect(delta('jobrunner_graphql_operation_duration_seconds_count', { operation: 'MyJobStats' })).toBe(1);
    // The queue gauges come from the database.
    expect(after.get('jobrunner_queue_jobs')!.samples.map((x) => x.labels.status).sort()).toEqual(['pending', 'running']);
    expect(valueOf(after, 'jobrunner_workers', { lease: 'held' })).toBe(1);
    expect(valueOf(after, 'jobrunner_worker_lease_renewals_total', { outcome: 'lost' })).toBe(0);
  });

  it('counts live views by transport while they are open, and WebSocket connections by protocol', async () => {
    const op = await s.user('operator');
    const job = await submit(s, op.token, { command: ['sleep', '60'] });
    await waitRunning(s, op.token, job.id);

    const stream = await fetch(`${s.api}/jobs/${job.id}/logs/stream`, { headers: { authorization: `Bearer ${op.token}` } });
    expect(stream.status).toBe(200);
    const reading = stream.text();
    const ws = wsClient(s, op.token);
    const updates = track(ws.client, JOB_UPDATED, { id: job.id });
    await waitFor(() => updates.values.length > 0);
    const sse = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${op.token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: JOB_UPDATED, variables: { id: job.id } }),
    });
    expect(sse.status).toBe(200);
    const sseReading = sse.text();
    // The legacy subscriptions-transport-ws protocol, as GraphQL Playground speaks it.
    const legacy = new WebSocket(wsUrl(s), 'graphql-ws');
    const legacyMessages: { type: string }[] = [];
    legacy.on('message', (data) => legacyMessages.push(JSON.parse(String(data)) as { type: string }));
    await new Promise((resolve, reject) => legacy.once('open', resolve).once('error', reject));
    legacy.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${op.token}` } }));
    legacy.send(JSON.stringify({ id: '1', type: 'start', payload: { query: JOB_UPDATED, variables: { id: job.id } } }));
    await waitFor(() => legacyMessages.some((m) => m.type === 'data'));

    const live = (m: Map<string, Family>, transport: string) => valueOf(m, 'jobrunner_live_subscribers', { transport });
    const open = await waitFor(async () => {
      const m = await scrape(s.url);
      return live(m, 'rest-stream') === 1 && live(m, 'graphql-ws') === 1 && live(m, 'sse') === 1 && live(m, 'legacy-ws') === 1 && m;
    });
    expect(valueOf(open, 'jobrunner_websocket_connections', { protocol: 'graphql-transport-ws' })).toBe(1);
    expect(valueOf(open, 'jobrunner_websocket_connections', { protocol: 'graphql-ws' })).toBe(1);
    // The queue gauges are read from the database at most every 2 s, whatever the scrape rate.
    await waitFor(async () => valueOf(await scrape(s.url), 'jobrunner_queue_jobs', { status: 'running' }) === 1);

    // Canceling ends both views.
    expect((await s.request('POST', `/jobs/${job.id}/cancel`, { token: op.token })).status).toBe(200);
    await reading;
    await updates.done;
    expect(await sseReading).toContain('event: complete');
    await waitFor(() => legacyMessages.some((m) => m.type === 'complete'));
    legacy.close();
    await ws.dispose();
    await waitFor(async () => {
      const m = await scrape(s.url);
      const sockets = valueOf(m, 'jobrunner_websocket_connections');
      return live(m, 'rest-stream') === 0 && live(m, 'graphql-ws') === 0 && live(m, 'sse') === 0 && live(m, 'legacy-ws') === 0 && sockets === 0;
    });
  });

  it('asks for the token: none or a wrong one is a 401 that says what to send', async () => {
    for (const auth of [undefined, 'Bearer wrong-token-0123456789', `Basic ${TOKEN}`]) {
      const res = await fetch(`${s.url}/metrics`, { headers: auth ? { authorization: auth } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await res.json()).detail).toMatch(/METRICS_TOKEN/);
    }
  });
});

describe('metrics exposure without a token', () => {
  it('is off on the API port by default and says how to turn it on; METRICS_PUBLIC=on opts in', async () => {
    const closed = await startServer('sqlite');
    try {
      const res = await fetch(`${closed.url}/metrics`);
      expect(res.status).toBe(404);
      const { detail } = await res.json();
      for (const hint of ['METRICS_TOKEN', 'METRICS_PORT', 'METRICS_PUBLIC=on']) expect(detail).toContain(hint);
      // Liveness asks nothing of the database and needs no token.
      const live = await fetch(`${closed.url}/livez`);
      expect(live.status).toBe(200);
      expect(await live.json()).toEqual({ status: 'alive' });
    } finally {
      await closed.stop();
    }
    const open = await startServer('sqlite', { METRICS_PUBLIC: 'on' });
    try {
      const m = await scrape(open.url, null);
      expect(m.has('jobrunner_jobs_submitted_total')).toBe(true);
    } finally {
      await open.stop();
    }
  });

  it('METRICS=off serves no /metrics and collects nothing', async () => {
    const off = await startServer('sqlite', { METRICS: 'off', METRICS_PUBLIC: 'on' });
    try {
      expect(off.app.metrics).toBeNull();
      expect((await fetch(`${off.url}/metrics`)).status).toBe(404);
    } finally {
      await off.stop();
    }
  });
});

describe('database errors', () => {
  it('counts a request that failed on the database, and nothing for answers the API names', async () => {
    const s = await startServer('sqlite', { METRICS_PUBLIC: 'on' });
    try {
      const job = await submit(s, s.adminToken, { command: ['echo', 'hi'] });
      await waitTerminal(s, s.adminToken, job.id);
      const before = valueOf(await scrape(s.url, null), 'jobrunner_database_errors_total');
      expect((await s.request('GET', '/jobs/no-such-job', { token: s.adminToken })).status).toBe(404);
      // A real database fault: the table the logs are read from is gone.
      await s.app.db.prisma.$executeRawUnsafe('ALTER TABLE job_log_chunks RENAME TO job_log_chunks_away');
      try {
        expect((await s.request('GET', `/jobs/${job.id}/logs`, { token: s.adminToken })).status).toBe(500);
      } finally {
        await s.app.db.prisma.$executeRawUnsafe('ALTER TABLE job_log_chunks_away RENAME TO job_log_chunks');
      }
      expect(valueOf(await scrape(s.url, null), 'jobrunner_database_errors_total') - before).toBe(1);
      expect((await getLogs(s, s.adminToken, job.id)).stdout).toBe('hi\n');
    } finally {
      await s.stop();
    }
  });
});

describe('metrics settings', () => {
  it('refuse a bad value at start with one line naming the variable', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ METRICS: 'yes' }, /^METRICS must be on or off/],
      [{ METRICS_PUBLIC: 'true' }, /^METRICS_PUBLIC must be on or off/],
      [{ METRICS_TOKEN: 'short' }, /^METRICS_TOKEN must be 16 to 256 printable characters/],
      [{ METRICS_TOKEN: 'has a space in it, sixteen+' }, /^METRICS_TOKEN/],
      [{ METRICS_PORT: '70000' }, /^METRICS_PORT must be an integer from 0 to 65535/],
    ];
    for (const [env, message] of bad) {
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(message);
    }
    expect(loadConfig({}).metrics).toEqual({ enabled: true, port: null, host: '127.0.0.1', token: null, public: false });
    expect(loadConfig({ HOST: '0.0.0.0', METRICS_PORT: '9464' }).metrics).toMatchObject({ port: 9464, host: '0.0.0.0' });
  });
});
