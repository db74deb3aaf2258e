// Submit a job: argv one field per argument (never a shell string), working
// dir, env pairs, timeout, payload JSON. The API's validation issues are shown
// next to the fields they name. `from` pre-fills the form from a job (re-run).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, gql, type ApiIssue } from '../api.js';
import { navigate } from '../router.js';
import { ErrorBanner, Field, useMe } from '../ui.js';

interface Form {
  name: string;
  argv: string[];
  workingDir: string;
  env: [string, string][];
  timeout: string;
  payload: string;
}

const EMPTY: Form = { name: '', argv: [''], workingDir: '', env: [], timeout: '', payload: '' };
const MASKED = '***';

/** Which form field an issue's loc names (GraphQL input names, as the API reports them). */
function fieldOf(issue: ApiIssue): string {
  const loc = issue.loc.filter((p) => p !== 'input' && p !== 'body');
  const head = String(loc[0] ?? '');
  if (head === 'command') return typeof loc[1] === 'number' ? `argv-${loc[1]}` : 'argv';
  if (head === 'working_dir' || head === 'workingDir') return 'workingDir';
  if (head === 'timeout_seconds' || head === 'timeoutSeconds') return 'timeout';
  if (head === 'env' || head === 'payload' || head === 'name' || head === 'limits') return head;
  return '';
}

export function SubmitPage({ from }: { from: string | null }) {
  const me = useMe();
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<string | null>(null);

  useEffect(() => {
    if (!from) return;
    gql<{ job: { name: string; command: string[]; workingDir: string; env: Record<string, string>; timeoutSeconds: number | null; payload: unknown; ownerId: string } }>(
      'query ($id: ID!) { job(id: $id) { name command workingDir env timeoutSeconds payload ownerId } }',
      { id: from },
    )
      .then(({ job }) => {
        const env = Object.entries(job.env).map(([k, v]) => [k, String(v)] as [string, string]);
        setForm({
          name: job.name,
          argv: job.command.length ? job.command : [''],
          // A job without a working dir got a fresh run directory: so will the copy.
          workingDir: /\/runs\/[^/]+$/.test(job.workingDir) ? '' : job.workingDir,
          env,
          timeout: job.timeoutSeconds ? String(job.timeoutSeconds) : '',
          payload: job.payload ? JSON.stringify(job.payload, null, 2) : '',
        });
        if (env.some(([, v]) => v === MASKED)) setNote('Some env values are masked (not your job): fill them in before submitting.');
      })
      .catch((e: Error) => setGeneral(e.message));
  }, [from]);

  const set = (patch: Partial<Form>) => setForm((f) => ({ ...f, ...patch }));

  async function submit(e: Event) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    let payload: unknown = null;
    if (form.payload.trim()) {
      try {
        payload = JSON.parse(form.payload);
        if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) errs.payload = 'The payload must be a JSON object, e.g. {"key": "value"}';
      } catch (err) {
        errs.payload = `Not valid JSON: ${(err as Error).message}`;
      }
    }
    const timeout = form.timeout.trim() ? Number(form.timeout) : null;
    if (timeout !== null && !Number.isInteger(timeout)) errs.timeout = 'A whole number of seconds';
    setErrors(errs);
    setGeneral(null);
    if (Object.keys(errs).length) return;
    const input = {
      name: form.name,
      command: form.argv,
      workingDir: form.workingDir.trim() || null,
      env: form.env.length ? Object.fromEntries(form.env) : null,
      timeoutSeconds: timeout,
      payload,
    };
    setBusy(true);
    try {
      const d = await gql<{ submitJob: { id: string } }>('mutation ($input: SubmitJobInput!) { submitJob(input: $input) { id } }', { input });
      navigate(`#/jobs/${encodeURIComponent(d.submitJob.id)}`);
    } catch (err) {
      if (err instanceof ApiError && err.issues.length) {
        const byField: Record<string, string> = {};
        const rest: string[] = [];
        for (const issue of err.issues) {
          const f = fieldOf(issue);
          if (f) byField[f] = byField[f] ? `${byField[f]}; ${issue.msg}` : issue.msg;
          else rest.push(`${issue.loc.join('.')}: ${issue.msg}`);
        }
        setErrors(byField);
        setGeneral(rest.length ? rest.join('; ') : 'Fix the fields marked below.');
      } else setGeneral(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  if (me.role === 'VIEWER') return <p class="notice">Viewers can read jobs but not submit them.</p>;
  const describedBy = (id: string) => (errors[id] ? `${id}-error` : undefined);
  return (
    <form class="submit-form" onSubmit={submit} aria-labelledby="submit-title" noValidate>
      <h1 id="submit-title">{from ? 'Re-run a job' : 'Submit a job'}</h1>
      {note && <p class="notice">{note}</p>}
      <ErrorBanner error={general} />
      <Field id="name" label="Name" error={errors.name}>
        <input id="name" value={form.name} onInput={(e) => set({ name: e.currentTarget.value })} aria-invalid={!!errors.name} aria-describedby={describedBy('name')} />
      </Field>
      <fieldset class="argv">
        <legend>Command (argv: the program, then one argument per field; no shell)</legend>
        {errors.argv && (
          <small class="field-error" role="alert">
            {errors.argv}
          </small>
        )}
        {form.argv.map((arg, i) => (
          <div class={`argv-row${errors[`argv-${i}`] ? ' field-invalid' : ''}`} key={i}>
            <label for={`argv-${i}`}>{i === 0 ? 'program' : `arg ${i}`}</label>
            <input
              id={`argv-${i}`}
              class="mono"
              value={arg}
              aria-invalid={!!errors[`argv-${i}`]}
              aria-describedby={describedBy(`argv-${i}`)}
              onInput={(e) => set({ argv: form.argv.map((a, j) => (j === i ? e.currentTarget.value : a)) })}
            />
            <button type="button" aria-label={`Remove ${i === 0 ? 'program' : `argument ${i}`}`} disabled={form.argv.length === 1} onClick={() => set({ argv: form.argv.filter((_, j) => j !== i) })}>
              ✕
            </button>
            {errors[`argv-${i}`] && (
              <small class="field-error" id={`argv-${i}-error`} role="alert">
                {errors[`argv-${i}`]}
              </small>
            )}
          </div>
        ))}
        <button type="button" onClick={() => set({ argv: [...form.argv, ''] })}>
          Add argument
        </button>
      </fieldset>
      <Field id="workingDir" label="Working directory" error={errors.workingDir} hint="An existing directory inside JOBS_ALLOWED_ROOTS; empty: a fresh one for this job.">
        <input id="workingDir" class="mono" value={form.workingDir} onInput={(e) => set({ workingDir: e.currentTarget.value })} aria-invalid={!!errors.workingDir} aria-describedby={describedBy('workingDir')} />
      </Field>
      <fieldset class="env">
        <legend>Environment</legend>
        {errors.env && (
          <small class="field-error" id="env-error" role="alert">
            {errors.env}
          </small>
        )}
        {form.env.map(([k, v], i) => (
          <div class="env-row" key={i}>
            <input aria-label={`Variable ${i + 1} name`} class="mono" placeholder="NAME" value={k} onInput={(e) => set({ env: form.env.map((p, j) => (j === i ? [e.currentTarget.value, p[1]] : p)) })} />
            <span aria-hidden="true">=</span>
            <input aria-label={`Variable ${i + 1} value`} class="mono" placeholder="value" value={v} onInput={(e) => set({ env: form.env.map((p, j) => (j === i ? [p[0], e.currentTarget.value] : p)) })} />
            <button type="button" aria-label={`Remove variable ${i + 1}`} onClick={() => set({ env: form.env.filter((_, j) => j !== i) })}>
              ✕
            </button>
          </div>
        ))}
        <button type="button" onClick={() => set({ env: [...form.env, ['', '']] })}>
          Add variable
        </button>
      </fieldset>
      <Field id="timeout" label="Timeout (seconds)" error={errors.timeout} hint="Empty: no timeout.">
        <input id="timeout" inputMode="numeric" value={form.timeout} onInput={(e) => set({ timeout: e.currentTarget.value })} aria-invalid={!!errors.timeout} aria-describedby={describedBy('timeout')} />
      </Field>
      <Field id="payload" label="Payload (JSON object, stored with the job)" error={errors.payload}>
        <textarea id="payload" class="mono" rows={4} value={form.payload} onInput={(e) => set({ payload: e.currentTarget.value })} aria-invalid={!!errors.payload} aria-describedby={describedBy('payload')} />
      </Field>
      {errors.limits && <p class="field-error">{errors.limits}</p>}
      <div class="actions">
        <button class="primary" type="submit" disabled={busy}>
          {busy ? 'Submitting…' : 'Submit'}
        </button>
      </div>
    </form>
  );
}
