// Every Prometheus series the service exports, in one registry per process
// (tests run several apps in one process, so never prom-client's global
// one). Labels take only bounded values: statuses, transports, route
// templates, operation names under a cap. Nothing is labelled by job, user
// or worker: per-user figures belong to the admin API.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const PREFIX = 'jobrunner_';

/** Seconds, from a quick `true` to a day-long build. */
const JOB_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400];
/** Seconds an API request takes (streams are labelled by their route and last as long as they are read). */
const REQUEST_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const FINAL_STATUSES = ['success', 'failed', 'canceled'] as const;
export const TRANSPORTS = ['graphql-ws', 'legacy-ws', 'sse', 'rest-stream'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name: PREFIX + name, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []) =>
    new Histogram<L>({ name: PREFIX + name, help, buckets, labelNames, registers });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name: PREFIX + name, help, labelNames, registers });

  // Process CPU, memory, handles, GC and event-loop lag.
  collectDefaultMetrics({ register: registry, prefix: PREFIX });

  return {
    registry,
    jobsSubmitted: counter('jobs_submitted_total', 'Jobs accepted by this process (single submissions and batch members)'),
    jobsStarted: counter('jobs_started_total', 'Job processes started by this worker'),
    jobsFinished: counter('jobs_finished_total', 'Jobs that reached a final status, counted by the process that recorded it', ['status']),
    jobsGivenBack: counter('jobs_requeued_total', 'Claimed jobs put back to pending before they started (shutdown, lost lease, lost worker)'),
    spawnFailures: counter('job_spawn_failures_total', 'Jobs whose command could not be started (ENOENT, EACCES, a missing working directory, …)'),
    queueWait: histogram('job_queue_wait_seconds', 'From submission to the start of the job\'s process', JOB_SECONDS),
    runDuration: histogram('job_run_duration_seconds', 'From the claim of a job to its recorded outcome, by final status', JOB_SECONDS, ['status']),
    logBytesStored: counter('log_bytes_stored_total', 'Job output stored, in bytes, by stream', ['stream']),
    logBytesDropped: counter('log_bytes_dropped_total', 'Job output dropped past MAX_LOG_BYTES, in bytes, by stream', ['stream']),
    logStreamsTruncated: counter('log_streams_truncated_total', 'Job output streams cut at MAX_LOG_BYTES', ['stream']),
    subscribers: gauge('live_subscribers', 'Open live views (subscriptions and log streams), by transport', ['transport']),
    httpRequests: counter('http_requests_total', 'HTTP requests answered, by method, route template and status', ['method', 'route', 'status']),
    httpDuration: histogram('http_request_duration_seconds', 'HTTP request duration until the response ended, by method and route template', REQUEST_SECONDS, ['method', 'route']),
    graphqlOperations: counter('graphql_operations_total', 'GraphQL operations run (HTTP, WebSocket and SSE), by operation name, type and outcome', ['operation', 'type', 'outcome']),
    graphqlDuration: histogram('graphql_operation_duration_seconds', 'GraphQL query and mutation execution time, by operation name', REQUEST_SECONDS, ['operation', 'type']),
    loginFailures: counter('login_failures_total', 'Logins refused for a wrong email or password or an inactive account'),
    rateLimited: counter('rate_limited_total', 'Requests refused by a rate limit, by limit', ['limit']),
    databaseErrors: counter('database_errors_total', 'Failures with a database cause that reached a log line (requests, claims, lease renewals, outcome writes)'),
    redisErrors: counter('redis_errors_total', 'Errors of the Redis event bus: failed connects and reconnects, dropped connections, failed publishes (held and sent again)'),
    redisReconnects: counter('redis_reconnects_total', 'Times the Redis event bus came back after being unreachable'),
    leaseRenewals: counter('worker_lease_renewals_total', 'Worker heartbeats: lease renewals by outcome (ok; failed: no answer in time; lost: the worker had been reaped)', ['outcome']),
    runsFenced: counter('worker_runs_fenced_total', 'Runs killed because their attempt was no longer this worker\'s'),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * `metric.labels(...)` remembered per label values: prom-client hashes the
 * values on every call, and request paths call it for every answer. Bounded
 * because every label takes values from a bounded set.
 */
export function labelled<T>(child: (...values: string[]) => T): (...values: string[]) => T {
  const children = new Map<string, T>();
  return (...values) => {
    const key = values.join('\u0000');
    let c = children.get(key);
    if (c === undefined) children.set(key, (c = child(...values)));
    return c;
  };
}
