// Admins: users (create, change role, deactivate, reset password) and the
// running-job limits (the default and per-user overrides).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, gql } from '../api.js';
import { ConfirmDialog, ErrorBanner, Field, formatTime, useMe, type ConfirmRequest } from '../ui.js';

interface User {
  id: string;
  email: string;
  role: 'ADMIN' | 'OPERATOR' | 'VIEWER';
  isActive: boolean;
  maxConcurrentJobs: number | null;
  effectiveMaxConcurrentJobs: number;
  runningJobs: number;
  pendingJobs: number;
  createdAt: string;
}

const USER_FIELDS = 'id email role isActive maxConcurrentJobs effectiveMaxConcurrentJobs runningJobs pendingJobs createdAt';
const LOAD = `{ users { ${USER_FIELDS} } limits { defaultMaxConcurrentJobs } }`;
const ROLES = ['ADMIN', 'OPERATOR', 'VIEWER'] as const;

const messageOf = (e: unknown) => (e instanceof ApiError && e.issues.length ? e.issues.map((i) => i.msg).join('; ') : e instanceof Error ? e.message : String(e));

export function AdminPage() {
  const me = useMe();
  const [users, setUsers] = useState<User[] | null>(null);
  const [defaultLimit, setDefaultLimit] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const [draftDefault, setDraftDefault] = useState('');
  const [overrides, setOverrides] = useState<Record<string, string>>({});
  const [create, setCreate] = useState({ email: '', password: '', role: 'OPERATOR' });
  const [createError, setCreateError] = useState<string | null>(null);

  const load = () =>
    gql<{ users: User[]; limits: { defaultMaxConcurrentJobs: number } }>(LOAD)
      .then((d) => {
        setUsers(d.users);
        setDefaultLimit(d.limits.defaultMaxConcurrentJobs);
        setDraftDefault(String(d.limits.defaultMaxConcurrentJobs));
        setOverrides(Object.fromEntries(d.users.map((u) => [u.id, u.maxConcurrentJobs === null ? '' : String(u.maxConcurrentJobs)])));
      })
      .catch((e: Error) => setError(e.message));
  useEffect(() => void load(), []);

  async function run(what: string, op: () => Promise<unknown>) {
    setError(null);
    setSaved(null);
    try {
      await op();
      await load();
      setSaved(what);
    } catch (e) {
      setError(messageOf(e));
    }
  }

  const update = (u: User, input: Record<string, unknown>) => gql(`mutation ($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }`, { id: u.id, input });

  function resetPassword(u: User) {
    setConfirm({
      title: `Reset the password of ${u.email}?`,
      body: (
        <Field id="new-password" label="New password (8 to 256 characters)">
          <input id="new-password" type="password" autocomplete="new-password" minLength={8} required />
        </Field>
      ),
      confirm: 'Set password',
      danger: true,
      run: async () => {
        const password = (document.getElementById('new-password') as HTMLInputElement).value;
        try {
          await update(u, { password });
        } catch (e) {
          throw new Error(messageOf(e));
        }
        setSaved(`password of ${u.email} reset; their sessions ended`);
      },
    });
  }

  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Admin</h1>
      <ErrorBanner error={error} />
      {saved && (
        <p class="saved" role="status">
          Saved: {saved}.
        </p>
      )}
      <h2>Limits</h2>
      {defaultLimit !== null && (
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            void run('default limit', () => gql('mutation ($max: Int!) { setDefaultJobLimit(max: $max) { defaultMaxConcurrentJobs } }', { max: Number(draftDefault) }));
          }}
        >
          <Field id="default-limit" label="Running jobs per user (default)" hint={`now ${defaultLimit}`}>
            <input id="default-limit" inputMode="numeric" value={draftDefault} onInput={(e) => setDraftDefault(e.currentTarget.value)} />
          </Field>
          <button type="submit" class="primary">
            Set default
          </button>
        </form>
      )}

      <h2>Users</h2>
      {users === null ? (
        <p class="muted">Loading…</p>
      ) : (
        <div class="table-wrap">
          <table class="users">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Active</th>
                <th scope="col">Job limit</th>
                <th scope="col" class="mid">
                  Jobs now
                </th>
                <th scope="col">Password</th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => (
                <tr key={u.id} data-user-id={u.id}>
                  <td>
                    {u.email}
                    <div class="small muted">since {formatTime(u.createdAt)}</div>
                  </td>
                  <td>
                    <select
                      aria-label={`Role of ${u.email}`}
                      value={u.role}
                      disabled={u.id === me.id}
                      onChange={(e) => {
                        const role = e.currentTarget.value;
                        e.currentTarget.value = u.role;
                        setConfirm({
                          title: `Make ${u.email} ${role.toLowerCase()}?`,
                          body: <p>Their sessions end at once; they sign in again with the new role.</p>,
                          confirm: 'Change role',
                          run: () => run(`role of ${u.email}`, () => update(u, { role })),
                        });
                      }}
                    >
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r.toLowerCase()}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>
                    <button
                      type="button"
                      class={u.isActive ? 'danger' : ''}
                      disabled={u.id === me.id}
                      onClick={() =>
                        setConfirm({
                          title: `${u.isActive ? 'Deactivate' : 'Reactivate'} ${u.email}?`,
                          body: <p>{u.isActive ? 'They can no longer sign in, and their sessions and API tokens stop working at once.' : 'They can sign in again.'}</p>,
                          confirm: u.isActive ? 'Deactivate' : 'Reactivate',
                          danger: u.isActive,
                          run: () => run(`${u.email} ${u.isActive ? 'deactivated' : 'reactivated'}`, () => update(u, { isActive: !u.isActive })),
                        })
                      }
                    >
                      {u.isActive ? 'Deactivate' : 'Reactivate'}
                    </button>
                    <span class="sr-only">{u.isActive ? 'active' : 'inactive'}</span>
                  </td>
                  <td>
                    <form
                      class="limit-form"
                      onSubmit={(e) => {
                        e.preventDefault();
                        const v = (overrides[u.id] ?? '').trim();
                        void run(`limit of ${u.email}`, () =>
                          gql('mutation ($u: ID!, $max: Int) { setUserJobLimit(userId: $u, max: $max) { defaultMaxConcurrentJobs } }', { u: u.id, max: v === '' ? null : Number(v) }),
                        );
                      }}
                    >
                      <input
                        aria-label={`Job limit of ${u.email} (empty: the default)`}
                        inputMode="numeric"
                        placeholder={`default (${defaultLimit ?? ''})`}
                        value={overrides[u.id] ?? ''}
                        onInput={(e) => setOverrides({ ...overrides, [u.id]: e.currentTarget.value })}
                      />
                      <button type="submit">Set</button>
                    </form>
                    <div class="small muted">in force: {u.effectiveMaxConcurrentJobs}</div>
                  </td>
                  <td class="mid">
                    {u.runningJobs} running, {u.pendingJobs} pending
                  </td>
                  <td>
                    <button type="button" onClick={() => resetPassword(u)}>
                      Reset
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>New user</h2>
      <form
        class="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setCreateError(null);
          try {
            await gql('mutation ($input: CreateUserInput!) { createUser(input: $input) { id } }', { input: create });
            setSaved(`user ${create.email} created`);
            setCreate({ email: '', password: '', role: 'OPERATOR' });
            await load();
          } catch (err) {
            setCreateError(messageOf(err));
          }
        }}
      >
        <Field id="new-email" label="Email">
          <input id="new-email" type="email" required value={create.email} onInput={(e) => setCreate({ ...create, email: e.currentTarget.value })} />
        </Field>
        <Field id="new-user-password" label="Password">
          <input id="new-user-password" type="password" autocomplete="new-password" required value={create.password} onInput={(e) => setCreate({ ...create, password: e.currentTarget.value })} />
        </Field>
        <Field id="new-role" label="Role">
          <select id="new-role" value={create.role} onChange={(e) => setCreate({ ...create, role: e.currentTarget.value })}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r.toLowerCase()}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit" class="primary">
          Create user
        </button>
        <ErrorBanner error={createError} />
      </form>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
