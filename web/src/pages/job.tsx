// One job: its spec, timings and outcome, kept current by jobUpdated; the
// actions the signed-in role allows (each confirmed first); and its output.
import { useEffect, useState } from 'preact/hooks';
import { gql, subscribe } from '../api.js';
import { LogView } from '../logView.js';
import { navigate } from '../router.js';
import { useOwnerNames } from './jobs.js';
import { ConfirmDialog, ErrorBanner, formatDuration, formatTime, isTerminal, JOB_FIELDS, StatusBadge, useMe, useTicker, type ConfirmRequest, type JobRow } from '../ui.js';

interface JobDetail extends JobRow {
  env: Record<string, string>;
  payload: Record<string, unknown> | null;
  timeoutSeconds: number | null;
  attempt: number;
  workerId: string | null;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  limits: { memoryMb: number | null; pids: number | null; cpuSeconds: number | null; openFiles: number | null; fileSizeMb: number | null };
}

const DETAIL = `${JOB_FIELDS} env payload timeoutSeconds attempt workerId stdoutTruncated stderrTruncated limits { memoryMb pids cpuSeconds openFiles fileSizeMb }`;
const QUERY = `query ($id: ID!) { job(id: $id) { ${DETAIL} } }`;
const UPDATES = `subscription ($id: ID!) { jobUpdated(id: $id) { ${DETAIL} } }`;

export function JobPage({ id }: { id: string }) {
  const me = useMe();
  const [job, setJob] = useState<JobDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  useTicker(job?.status === 'RUNNING');
  const owners = useOwnerNames(me.role);

  useEffect(() => {
    let live = true;
    const load = () =>
      gql<{ job: JobDetail }>(QUERY, { id })
        .then((d) => live && setJob(d.job))
        .catch((e: Error) => live && setError(e.message));
    void load();
    const stop = subscribe<{ jobUpdated: JobDetail }>(UPDATES, () => ({ id }), {
      next: (d) => live && setJob(d.jobUpdated),
      // The stream ends with the terminal state; one more read makes sure the page shows the row as finally stored.
      complete: () => void load(),
      error: (e) => live && setError(e.message),
    });
    return () => {
      live = false;
      stop();
    };
  }, [id]);

  if (!job) return error ? <ErrorBanner error={error} /> : <p class="muted">Loading…</p>;

  const mine = job.ownerId === me.id;
  const mayChange = me.role === 'ADMIN' || (me.role === 'OPERATOR' && mine);
  const terminal = isTerminal(job.status);
  const limits = Object.entries(job.limits).map(([k, v]) => `${k} ${v ?? 'unlimited'}`);
  const truncated = [job.stdoutTruncated && 'stdout', job.stderrTruncated && 'stderr'].filter((x): x is string => !!x);

  const cancel = () =>
    setConfirm({
      title: `Cancel ${job.name}?`,
      body: <p>The job's processes are stopped (SIGTERM, then SIGKILL after the grace period).</p>,
      confirm: 'Cancel job',
      danger: true,
      run: () => gql(`mutation ($id: ID!) { cancelJob(id: $id) { ${DETAIL} } }`, { id }).then((d) => setJob((d as { cancelJob: JobDetail }).cancelJob)),
    });
  const purge = () =>
    setConfirm({
      title: `Purge ${job.name}?`,
      body: <p>The job and all its output are removed for good.</p>,
      confirm: 'Purge',
      danger: true,
      run: () => gql('mutation ($id: ID!) { purgeJob(id: $id) }', { id }).then(() => navigate('#/jobs')),
    });
  const forceComplete = () =>
    setConfirm({
      title: `Force-complete ${job.name}?`,
      body: (
        <label>
          Final status{' '}
          <select defaultValue="CANCELED" id="force-status">
            <option value="SUCCESS">success</option>
            <option value="FAILED">failed</option>
            <option value="CANCELED">canceled</option>
          </select>
        </label>
      ),
      confirm: 'Force-complete',
      danger: true,
      run: () => {
        const status = (document.getElementById('force-status') as HTMLSelectElement | null)?.value ?? 'CANCELED';
        return gql(`mutation ($id: ID!, $s: JobStatus!) { forceCompleteJob(id: $id, input: { status: $s }) { ${DETAIL} } }`, { id, s: status }).then((d) =>
          setJob((d as { forceCompleteJob: JobDetail }).forceCompleteJob),
        );
      },
    });

  return (
    <article aria-labelledby="job-title">
      <div class="title-row">
        <h1 id="job-title">
          {job.name} <StatusBadge status={job.status} />
        </h1>
        <div class="actions">
          {me.role !== 'VIEWER' && (
            <a class="button" href={`#/submit?from=${encodeURIComponent(job.id)}`}>
              Re-run
            </a>
          )}
          {mayChange && !terminal && (
            <button type="button" class="danger" onClick={cancel}>
              Cancel
            </button>
          )}
          {me.role === 'ADMIN' && !terminal && (
            <button type="button" class="danger" onClick={forceComplete}>
              Force-complete
            </button>
          )}
          {mayChange && terminal && (
            <button type="button" class="danger" onClick={purge}>
              Purge
            </button>
          )}
        </div>
      </div>
      <ErrorBanner error={error} />
      {job.cancelRequested && <p class="notice">A stop was asked for; the worker running the job is carrying it out.</p>}
      <dl class="facts">
        <dt>Command</dt>
        <dd class="mono argv">
          {job.command.map((a, i) => (
            <code key={i}>{a}</code>
          ))}
        </dd>
        <dt>Working dir</dt>
        <dd class="mono">{job.workingDir}</dd>
        <dt>Env</dt>
        <dd class="mono">
          {Object.keys(job.env).length === 0
            ? '—'
            : Object.entries(job.env).map(([k, v]) => (
                <div key={k}>
                  {k}={String(v)}
                </div>
              ))}
        </dd>
        <dt>Owner</dt>
        <dd class="mono">{mine ? `you (${job.ownerId})` : owners.has(job.ownerId) ? `${owners.get(job.ownerId)} (${job.ownerId})` : job.ownerId}</dd>
        <dt>Batch</dt>
        <dd>{job.batchId ? <a href={`#/batches/${encodeURIComponent(job.batchId)}`}>{job.batchId}</a> : '—'}</dd>
        <dt>Created</dt>
        <dd>{formatTime(job.createdAt)}</dd>
        <dt>Started</dt>
        <dd>{formatTime(job.startedAt)}</dd>
        <dt>Finished</dt>
        <dd>{formatTime(job.finishedAt)}</dd>
        <dt>Duration</dt>
        <dd class="tabular">{formatDuration(job.startedAt, job.finishedAt)}</dd>
        <dt>Exit code</dt>
        <dd class="mono">{job.exitCode ?? '—'}</dd>
        {job.error && (
          <>
            <dt>Error</dt>
            <dd class="error-text">{job.error}</dd>
          </>
        )}
        <dt>Timeout</dt>
        <dd>{job.timeoutSeconds ? `${job.timeoutSeconds} s` : 'none'}</dd>
        <dt>Limits</dt>
        <dd class="small">{limits.join(' · ')}</dd>
        <dt>Attempt</dt>
        <dd>
          {job.attempt} {job.workerId && <span class="muted mono small">on {job.workerId}</span>}
        </dd>
        {job.payload && (
          <>
            <dt>Payload</dt>
            <dd>
              <pre class="mono small">{JSON.stringify(job.payload, null, 2)}</pre>
            </dd>
          </>
        )}
      </dl>
      <LogView jobId={job.id} fileName={`${job.name.replace(/[^\w.-]+/g, '_')}-${job.id}.log`} truncated={truncated} />
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </article>
  );
}
