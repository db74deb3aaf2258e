// Batches: the list with per-status counts, and one batch with its jobs;
// both kept current by jobEvents (a batch is re-read when one of its jobs
// changes, at most once a second), with cancel / force-complete / delete by role.
import { useEffect, useState } from 'preact/hooks';
import { follow, gql } from '../api.js';
import { navigate } from '../router.js';
import { ConfirmDialog, ErrorBanner, formatDuration, formatTime, isTerminal, shortId, StatusBadge, STATUSES, throttle, useMe, type ConfirmRequest, type Status } from '../ui.js';

interface Counts {
  pending: number;
  running: number;
  success: number;
  failed: number;
  canceled: number;
  total: number;
}
interface BatchRow {
  id: string;
  name: string;
  description: string | null;
  ownerId: string;
  status: Status;
  createdAt: string;
  jobCounts: Counts;
}
interface BatchJob {
  id: string;
  name: string;
  status: Status;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

const BATCH_FIELDS = 'id name description ownerId status createdAt jobCounts { pending running success failed canceled total }';
const EVENTS = 'subscription ($batchId: ID) { jobEvents(batchId: $batchId) { id batchId status } }';

function Progress({ c }: { c: Counts }) {
  const done = c.success + c.failed + c.canceled;
  return (
    <div class="progress" role="img" aria-label={`${done} of ${c.total} jobs finished`}>
      {STATUSES.map((s) => {
        const n = c[s.toLowerCase() as keyof Counts];
        return n ? <span key={s} class={`bar bar-${s.toLowerCase()}`} style={{ flexGrow: String(n) }} title={`${n} ${s.toLowerCase()}`} /> : null;
      })}
    </div>
  );
}

function CountsText({ c }: { c: Counts }) {
  return (
    <span class="counts small">
      {STATUSES.map((s) => {
        const n = c[s.toLowerCase() as keyof Counts];
        return n ? (
          <span key={s} class={`count count-${s.toLowerCase()}`}>
            {n} {s.toLowerCase()}
          </span>
        ) : null;
      })}
    </span>
  );
}

export function BatchesPage() {
  const [rows, setRows] = useState<BatchRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const load = () =>
      gql<{ batches: { nodes: BatchRow[] } }>(`{ batches(order: DESC, first: 50) { nodes { ${BATCH_FIELDS} } } }`)
        .then((d) => live && setRows(d.batches.nodes))
        .catch((e: Error) => live && setError(e.message));
    const dirty = new Set<string>();
    const refresh = throttle(() => {
      const ids = [...dirty];
      dirty.clear();
      for (const id of ids) {
        gql<{ batch: BatchRow }>(`query ($id: ID!) { batch(id: $id) { ${BATCH_FIELDS} } }`, { id })
          .then(({ batch }) =>
            live &&
            setRows((cur) => {
              if (!cur) return cur;
              const at = cur.findIndex((b) => b.id === batch.id);
              return at >= 0 ? cur.map((b, i) => (i === at ? batch : b)) : [batch, ...cur];
            }),
          )
          .catch(() => undefined);
      }
    }, 1000);
    void load();
    const stop = follow<{ jobEvents: { batchId: string | null } }>(EVENTS, () => ({ batchId: null }), {
      next: ({ jobEvents }) => {
        if (!jobEvents.batchId) return;
        dirty.add(jobEvents.batchId);
        refresh();
      },
      error: (e) => live && setError(e.message),
    }, () => void load());
    return () => {
      live = false;
      refresh.cancel();
      stop();
    };
  }, []);

  return (
    <section aria-labelledby="batches-title">
      <h1 id="batches-title">Batches</h1>
      <ErrorBanner error={error} />
      {rows === null ? (
        <p class="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="muted empty">No batches yet (create them with the createBatch mutation or POST /job-batches).</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Progress</th>
                <th scope="col" class="mid">
                  Created
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((b) => (
                <tr key={b.id} data-batch-id={b.id}>
                  <td>
                    <a href={`#/batches/${encodeURIComponent(b.id)}`}>{b.name}</a>
                  </td>
                  <td>
                    <StatusBadge status={b.status} />
                  </td>
                  <td>
                    <Progress c={b.jobCounts} />
                    <CountsText c={b.jobCounts} />
                  </td>
                  <td class="mid">{formatTime(b.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function BatchPage({ id }: { id: string }) {
  const me = useMe();
  const [batch, setBatch] = useState<(BatchRow & { jobs: BatchJob[] }) | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const QUERY = `query ($id: ID!) { batch(id: $id) { ${BATCH_FIELDS} jobs { id name status exitCode startedAt finishedAt } } }`;

  useEffect(() => {
    let live = true;
    const load = () =>
      gql<{ batch: BatchRow & { jobs: BatchJob[] } }>(QUERY, { id })
        .then((d) => live && setBatch(d.batch))
        .catch((e: Error) => live && setError(e.message));
    const refresh = throttle(() => void load(), 1000);
    void load();
    const stop = follow<{ jobEvents: { id: string; status: Status } }>(EVENTS, () => ({ batchId: id }), {
      next: ({ jobEvents: ev }) => {
        // The row changes at once; counts and the batch status come with the next read.
        setBatch((b) => b && { ...b, jobs: b.jobs.map((j) => (j.id === ev.id ? { ...j, status: ev.status } : j)) });
        refresh();
      },
      error: (e) => live && setError(e.message),
    }, () => void load());
    return () => {
      live = false;
      refresh.cancel();
      stop();
    };
  }, [id]);

  if (!batch) return error ? <ErrorBanner error={error} /> : <p class="muted">Loading…</p>;
  const mayChange = me.role === 'ADMIN' || (me.role === 'OPERATOR' && batch.ownerId === me.id);
  const allDone = batch.jobs.every((j) => isTerminal(j.status));
  const act = (title: string, confirmText: string, body: string, mutation: string, after?: () => void) =>
    setConfirm({
      title,
      body: <p>{body}</p>,
      confirm: confirmText,
      danger: true,
      run: () => gql(mutation, { id }).then(() => (after ? after() : undefined)),
    });

  return (
    <article aria-labelledby="batch-title">
      <div class="title-row">
        <h1 id="batch-title">
          {batch.name} <StatusBadge status={batch.status} />
        </h1>
        <div class="actions">
          {mayChange && !allDone && (
            <button type="button" class="danger" onClick={() => act(`Cancel ${batch.name}?`, 'Cancel batch', 'Its pending and running jobs are canceled.', 'mutation ($id: ID!) { cancelBatch(id: $id) { id } }')}>
              Cancel
            </button>
          )}
          {me.role === 'ADMIN' && !allDone && (
            <button
              type="button"
              class="danger"
              onClick={() => act(`Force-complete ${batch.name}?`, 'Force-complete', 'Its unfinished jobs are recorded as canceled.', 'mutation ($id: ID!) { forceCompleteBatch(id: $id, input: { status: CANCELED }) { id } }')}
            >
              Force-complete
            </button>
          )}
          {mayChange && allDone && (
            <button type="button" class="danger" onClick={() => act(`Delete ${batch.name}?`, 'Delete', 'The batch, its jobs and their output are removed for good.', 'mutation ($id: ID!) { deleteBatch(id: $id) }', () => navigate('#/batches'))}>
              Delete
            </button>
          )}
        </div>
      </div>
      <ErrorBanner error={error} />
      {batch.description && <p>{batch.description}</p>}
      <p class="small muted">
        Owner <span class="mono">{batch.ownerId === me.id ? 'you' : shortId(batch.ownerId)}</span> · created {formatTime(batch.createdAt)} ·{' '}
        <a href={`#/jobs?batch=${encodeURIComponent(batch.id)}`}>in the jobs table</a>
      </p>
      <Progress c={batch.jobCounts} />
      <CountsText c={batch.jobCounts} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Status</th>
              <th scope="col">Duration</th>
              <th scope="col">Exit</th>
            </tr>
          </thead>
          <tbody>
            {batch.jobs.map((j) => (
              <tr key={j.id} data-job-id={j.id}>
                <td>
                  <a href={`#/jobs/${encodeURIComponent(j.id)}`}>{j.name}</a>
                </td>
                <td>
                  <StatusBadge status={j.status} />
                </td>
                <td>{formatDuration(j.startedAt, j.finishedAt)}</td>
                <td class="mono">{j.exitCode ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </article>
  );
}
