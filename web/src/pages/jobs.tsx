// The jobs table, newest first: one list query per page and filter, then
// kept current by the jobEvents subscription (rows change in place, new jobs
// appear on the first page); counts per status from jobStats, re-read when
// events arrive. Pages are keyset cursors, so arriving rows never shift a
// later page.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { follow, gql, type Role } from '../api.js';
import { href, navigate } from '../router.js';
import { ErrorBanner, formatDuration, formatTime, JOB_FIELDS, shortId, StatusBadge, STATUSES, throttle, useMe, useTicker, type JobRow, type Status } from '../ui.js';

const PAGE = 50;
/** Scrolled further than this, the user is reading the table: new jobs wait behind a button. */
const READING_OFFSET = 160;

interface Stats {
  pending: number;
  running: number;
  success: number;
  failed: number;
  canceled: number;
  total: number;
}

interface Filters {
  statuses: Status[];
  name: string;
  batchId: string;
  ownerId: string;
}

function filtersOf(q: URLSearchParams): Filters {
  return {
    statuses: (q.get('status') ?? '').split(',').filter((s): s is Status => (STATUSES as readonly string[]).includes(s)),
    name: q.get('name') ?? '',
    batchId: q.get('batch') ?? '',
    ownerId: q.get('owner') ?? '',
  };
}

function hashOf(f: Filters, after?: string | null): string {
  return href('/jobs', { status: f.statuses.join(','), name: f.name, batch: f.batchId, owner: f.ownerId, after });
}

function matches(job: JobRow, f: Filters): boolean {
  if (f.statuses.length && !f.statuses.includes(job.status)) return false;
  if (f.name && !job.name.toLowerCase().includes(f.name.toLowerCase())) return false;
  if (f.batchId && job.batchId !== f.batchId) return false;
  if (f.ownerId && job.ownerId !== f.ownerId) return false;
  return true;
}

const LIST = `query Jobs($first: Int, $after: String, $statuses: [JobStatus!], $name: String, $batchId: ID, $ownerId: ID) {
  jobs(order: DESC, first: $first, after: $after, statuses: $statuses, name: $name, batchId: $batchId, ownerId: $ownerId) {
    nodes { ${JOB_FIELDS} }
    pageInfo { hasNextPage endCursor }
  }
}`;
const STATS = '{ jobStats { pending running success failed canceled total } }';
const EVENTS = `subscription ($batchId: ID) { jobEvents(batchId: $batchId) { ${JOB_FIELDS} } }`;

/** Admins may list users: owners are shown by email. */
export function useOwnerNames(role: Role): Map<string, string> {
  const [names, setNames] = useState(new Map<string, string>());
  useEffect(() => {
    if (role !== 'ADMIN') return;
    gql<{ users: { id: string; email: string }[] }>('{ users { id email } }')
      .then((d) => setNames(new Map(d.users.map((u) => [u.id, u.email]))))
      .catch(() => undefined);
  }, [role]);
  return names;
}

export function JobsPage({ query }: { query: URLSearchParams }) {
  const me = useMe();
  const filters = useMemo(() => filtersOf(query), [query]);
  const after = query.get('after');
  const [rows, setRows] = useState<JobRow[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState(filters.name);
  /** New jobs that arrived while the user was scrolled down the table: shown when asked, so rows do not move under the reader. */
  const [held, setHeld] = useState<JobRow[]>([]);
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  const owners = useOwnerNames(me.role);
  useTicker(rows?.some((r) => r.status === 'RUNNING') ?? false);

  useEffect(() => {
    let live = true;
    const load = () =>
      gql<{ jobs: { nodes: JobRow[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(LIST, {
        first: PAGE,
        after,
        statuses: filters.statuses.length ? filters.statuses : null,
        name: filters.name || null,
        batchId: filters.batchId || null,
        ownerId: filters.ownerId || null,
      })
        .then((d) => {
          if (!live) return;
          setRows(d.jobs.nodes);
          setNext(d.jobs.pageInfo.hasNextPage ? d.jobs.pageInfo.endCursor : null);
          setError(null);
        })
        .catch((e: Error) => live && setError(e.message));
    const loadStats = () =>
      gql<{ jobStats: Stats }>(STATS)
        .then((d) => live && setStats(d.jobStats))
        .catch(() => undefined);
    const statsSoon = throttle(loadStats, 1000);
    setHeld([]);
    void load();
    void loadStats();
    // Events are applied once per frame, the latest row per job: a burst of changes costs one render.
    const pending = new Map<string, JobRow>();
    let frame = 0;
    const flush = () => {
      frame = 0;
      const batch = [...pending.values()];
      pending.clear();
      const byId = new Map(batch.map((j) => [j.id, j]));
      const known = new Set(rowsRef.current?.map((r) => r.id));
      // New jobs belong to the first page only; later pages keep their rows.
      const fresh = after ? [] : batch.filter((j) => !known.has(j.id) && matches(j, filters)).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      const reading = window.scrollY > READING_OFFSET;
      setRows((current) => {
        if (!current) return current;
        const updated = current.map((r) => byId.get(r.id) ?? r);
        const added = reading ? [] : fresh.filter((j) => !current.some((r) => r.id === j.id));
        return [...added, ...updated];
      });
      setHeld((h) => {
        const updated = h.map((r) => byId.get(r.id) ?? r);
        const added = reading ? fresh.filter((j) => !h.some((r) => r.id === j.id)) : [];
        return added.length || batch.some((j) => h.some((r) => r.id === j.id)) ? [...added, ...updated] : h;
      });
    };
    const stop = follow<{ jobEvents: JobRow }>(EVENTS, () => ({ batchId: filters.batchId || null }), {
      next: ({ jobEvents: job }) => {
        statsSoon();
        pending.set(job.id, job);
        if (!frame) frame = requestAnimationFrame(flush);
      },
      error: (e) => live && setError(e.message),
    }, () => {
      // Events missed while the socket was down: read the page once more.
      void load();
      void loadStats();
    });
    return () => {
      live = false;
      cancelAnimationFrame(frame);
      statsSoon.cancel();
      stop();
    };
  }, [filters, after]);

  // The name filter applies after typing pauses.
  useEffect(() => {
    if (name === filters.name) return;
    const t = setTimeout(() => navigate(hashOf({ ...filters, name }), true), 400);
    return () => clearTimeout(t);
  }, [name]);

  const toggleStatus = (s: Status) => {
    const statuses = filters.statuses.includes(s) ? filters.statuses.filter((x) => x !== s) : [...filters.statuses, s];
    navigate(hashOf({ ...filters, statuses }));
  };

  return (
    <section aria-labelledby="jobs-title">
      <div class="title-row">
        <h1 id="jobs-title">Jobs</h1>
        {me.role !== 'VIEWER' && (
          <a class="button primary" href="#/submit">
            New job
          </a>
        )}
      </div>
      <div class="stats" role="group" aria-label="Jobs per status (click to filter)">
        {STATUSES.map((s) => (
          <button
            type="button"
            key={s}
            class={`stat stat-${s.toLowerCase()}`}
            aria-pressed={filters.statuses.includes(s)}
            onClick={() => toggleStatus(s)}
            data-status={s}
          >
            <span class="stat-count">{stats ? stats[s.toLowerCase() as keyof Stats] : '–'}</span>
            <span class="stat-label">{s.toLowerCase()}</span>
          </button>
        ))}
        <span class="stat stat-total">
          <span class="stat-count">{stats ? stats.total : '–'}</span>
          <span class="stat-label">total</span>
        </span>
      </div>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Name <input type="search" value={name} placeholder="substring" onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Batch{' '}
          <input
            type="search"
            value={filters.batchId}
            placeholder="batch id"
            onChange={(e) => navigate(hashOf({ ...filters, batchId: e.currentTarget.value.trim() }))}
          />
        </label>
        {me.role !== 'OPERATOR' &&
          (owners.size ? (
            <label>
              Owner{' '}
              <select value={filters.ownerId} onChange={(e) => navigate(hashOf({ ...filters, ownerId: e.currentTarget.value }))}>
                <option value="">anyone</option>
                {[...owners].map(([id, email]) => (
                  <option key={id} value={id}>
                    {email}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <label>
              Owner{' '}
              <input
                type="search"
                value={filters.ownerId}
                placeholder="user id"
                onChange={(e) => navigate(hashOf({ ...filters, ownerId: e.currentTarget.value.trim() }))}
              />
            </label>
          ))}
        {(filters.statuses.length > 0 || filters.name || filters.batchId || filters.ownerId) && (
          <a href="#/jobs" class="button">
            Clear filters
          </a>
        )}
      </form>
      <ErrorBanner error={error} />
      {held.length > 0 && (
        <button
          type="button"
          class="new-jobs"
          onClick={() => {
            setRows((current) => [...held.filter((h) => !current?.some((r) => r.id === h.id)), ...(current ?? [])]);
            setHeld([]);
            window.scrollTo({ top: 0 });
          }}
        >
          {held.length === 1 ? '1 new job' : `${held.length} new jobs`}: show
        </button>
      )}
      {rows === null ? (
        <p class="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="muted empty">No jobs{filters.statuses.length || filters.name || filters.batchId || filters.ownerId ? ' match these filters' : ' yet'}.</p>
      ) : (
        <div class="table-wrap">
          <table class="jobs">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col" class="wide">
                  Command
                </th>
                <th scope="col" class="wide">
                  Owner
                </th>
                <th scope="col" class="mid">
                  Created
                </th>
                <th scope="col" class="mid">
                  Duration
                </th>
                <th scope="col">Exit</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((j) => (
                <tr key={j.id} data-job-id={j.id}>
                  <td>
                    <a href={`#/jobs/${encodeURIComponent(j.id)}`}>{j.name}</a>
                  </td>
                  <td class="status-cell">
                    <StatusBadge status={j.status} />
                  </td>
                  <td class="wide mono ellipsis" title={j.command.join(' ')}>
                    {j.command.join(' ')}
                  </td>
                  <td class="wide" title={j.ownerId}>
                    {j.ownerId === me.id ? 'you' : owners.get(j.ownerId) ?? shortId(j.ownerId)}
                  </td>
                  <td class="mid">{formatTime(j.createdAt)}</td>
                  <td class="mid">{formatDuration(j.startedAt, j.finishedAt)}</td>
                  <td class="mono">{j.exitCode ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Pages">
        {after && (
          <a class="button" href={hashOf(filters)}>
            Newest
          </a>
        )}
        {next && (
          <a class="button" href={hashOf(filters, next)}>
            Older jobs
          </a>
        )}
      </nav>
    </section>
  );
}
