// Small shared pieces: the signed-in user, status badges, times, a
// confirmation dialog, form fields with their error, and an error banner.
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { Me } from './api.js';

export const MeContext = createContext<Me | null>(null);
export function useMe(): Me {
  const me = useContext(MeContext);
  if (!me) throw new Error('useMe outside a signed-in view');
  return me;
}

export const STATUSES = ['PENDING', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED'] as const;
export type Status = (typeof STATUSES)[number];
export const isTerminal = (s: string) => s === 'SUCCESS' || s === 'FAILED' || s === 'CANCELED';

/** The job fields every view shows. */
export const JOB_FIELDS = 'id name status command workingDir ownerId batchId createdAt startedAt finishedAt exitCode error cancelRequested';

export interface JobRow {
  id: string;
  name: string;
  status: Status;
  command: string[];
  workingDir: string;
  ownerId: string;
  batchId: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  error: string | null;
  cancelRequested: boolean;
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status.toLowerCase()}`}>{status.toLowerCase()}</span>;
}

export function formatTime(iso: string | null): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Re-renders every second while `active` (running jobs' durations). */
export function useTicker(active: boolean): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [active]);
}

export function formatDuration(from: string | null, to: string | null): string {
  if (!from) return '—';
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return m < 60 ? `${m} min ${Math.round((ms % 60_000) / 1000)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// The end of an id: ids are time-ordered (UUIDv7), so their starts are alike.
export const shortId = (id: string) => id.slice(-8);

export function ErrorBanner({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p class="error-banner" role="alert">
      {error}
    </p>
  );
}

export function Field(props: { label: string; error?: string | null; hint?: string; children: ComponentChildren; id: string }) {
  return (
    <div class={`field${props.error ? ' field-invalid' : ''}`}>
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && <small class="hint">{props.hint}</small>}
      {props.error && (
        <small class="field-error" id={`${props.id}-error`} role="alert">
          {props.error}
        </small>
      )}
    </div>
  );
}

export interface ConfirmRequest {
  title: string;
  body: ComponentChildren;
  confirm: string;
  danger?: boolean;
  run(): Promise<unknown>;
}

/** A modal <dialog> asking to confirm an action; shows the API's refusal in place. */
export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest | null; onClose(): void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    setError(null);
    if (request && !d.open) d.showModal();
    if (!request && d.open) d.close();
  }, [request]);
  async function go() {
    if (!request) return;
    setBusy(true);
    try {
      await request.run();
      onClose();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <dialog ref={ref} class="confirm" onClose={onClose} aria-labelledby="confirm-title">
      {request && (
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            void go();
          }}
        >
          <h2 id="confirm-title">{request.title}</h2>
          <div class="confirm-body">{request.body}</div>
          <ErrorBanner error={error} />
          <div class="actions">
            <button type="button" onClick={onClose}>
              Keep it
            </button>
            <button type="submit" class={request.danger ? 'danger' : 'primary'} disabled={busy} autofocus>
              {busy ? 'Working…' : request.confirm}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

/** Calls `fn` at most once per `ms`, the last call always running (trailing). */
export function throttle(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: number | undefined;
  let last = 0;
  const run = () => {
    timer = undefined;
    last = Date.now();
    fn();
  };
  const wrapped = () => {
    if (timer !== undefined) return;
    timer = window.setTimeout(run, Math.max(0, last + ms - Date.now()));
  };
  wrapped.cancel = () => window.clearTimeout(timer);
  return wrapped;
}
