// login, logout, whoami.
import { hostname } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { configPath, readLogin, removeLogin, writeLogin, type StoredLogin } from '../config.js';
import { type Ctx, intOption, str } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { Api } from '../http.js';
import { fields, printJson, when } from '../output.js';
import { readPassword } from '../password.js';

interface Me {
  id: string;
  email: string;
  role: 'admin' | 'operator' | 'viewer';
  effective_max_concurrent_jobs: number;
  running_jobs: number;
  pending_jobs: number;
}

/** The widest scopes each role may give a token (the server's policy.ts holds the rule and refuses more; the client cannot import it). */
const ROLE_SCOPES: Record<Me['role'], string[]> = {
  admin: ['jobs:write', 'batches:write', 'admin'],
  operator: ['jobs:write', 'batches:write'],
  viewer: ['jobs:read', 'batches:read'],
};

async function askEmail(): Promise<string> {
  if (!process.stdin.isTTY) throw new CliError('no --email: give it (the password then comes from JOBRUNNER_PASSWORD or stdin)', EXIT.usage);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question('email: ')).trim();
  } finally {
    rl.close();
  }
}

/** A password session for `email` on `api`'s server. */
async function passwordSession(api: Api, email: string, password: string): Promise<{ token: string; expiresIn: number }> {
  const res = await api.request<{ access_token: string; expires_in: number; detail?: string }>('POST', '/auth/token', { form: { username: email, password }, accept: [401] });
  if (res.status === 401) throw new CliError(`login refused for ${email}: wrong email or password (or the account is deactivated)`, EXIT.auth);
  return { token: res.body.access_token, expiresIn: res.body.expires_in };
}

/** A login that keeps the session token itself. */
function sessionLogin(server: string, me: Me, session: { token: string; expiresIn: number }): StoredLogin {
  return { server, token: session.token, token_kind: 'session', token_id: null, email: me.email, expires_at: new Date(Date.now() + session.expiresIn * 1000).toISOString() };
}

/** A login that keeps a new API token with the widest scopes of `me`'s role; null when the server has no API tokens. */
async function apiTokenLogin(asSession: Api, me: Me, days: number | undefined): Promise<StoredLogin | null> {
  const made = await asSession.request<{ id: string; token: string; expires_at: string }>('POST', '/auth/tokens', {
    body: { name: `jobrunner CLI on ${hostname()}`.slice(0, 100), scopes: ROLE_SCOPES[me.role], ...(days && { expires_in_days: days }) },
    accept: [404],
    fields: { expires_in_days: '--days' },
  });
  if (made.status === 404) return null;
  return { server: asSession.target.server, token: made.body.token, token_kind: 'api', token_id: made.body.id, email: me.email, expires_at: made.body.expires_at };
}

export async function login(ctx: Ctx): Promise<void> {
  const server = ctx.api.target.server;
  const previous = readLogin();
  const email = str(ctx.values, 'email') ?? previous?.email ?? (await askEmail());
  if (!email) throw new CliError('no email given', EXIT.usage);
  const days = intOption(ctx.values, 'days');
  const password = await readPassword({ env: 'JOBRUNNER_PASSWORD', prompt: `password for ${email} on ${server}: `, stdin: true });
  if (!password) throw new CliError('no password given (JOBRUNNER_PASSWORD, a terminal prompt, or stdin)', EXIT.usage);

  const session = await passwordSession(new Api({ server, token: null, login: null }), email, password);
  const asSession = new Api({ server, token: session.token, login: null });
  const me = await asSession.get<Me>('/users/me');
  const token = ctx.values.session ? null : await apiTokenLogin(asSession, me, days);
  // The API token is what stays; the password session is not needed any more.
  if (token) await asSession.request('POST', '/auth/logout', { accept: [401, 403] });
  const stored = token ?? sessionLogin(server, me, session);
  writeLogin(stored);
  // Replacing a login of the same account: its token goes (another account's password is not ours to try).
  if (previous && previous.token !== stored.token && previous.server === server && previous.email === me.email) await revokeQuietly(previous, password);
  process.stderr.write(`logged in to ${server} as ${me.email} (${me.role}); ${stored.token_kind === 'api' ? 'API token' : 'session'} valid until ${when(stored.expires_at)}, kept in ${configPath()}\n`);
}

/** Ends a login's token on its server; a failure is only reported. Returns what happened. */
async function revoke(login: StoredLogin, password: string | null): Promise<string> {
  const api = new Api({ server: login.server, token: login.token, login });
  if (login.token_kind === 'session') {
    await api.request('POST', '/auth/logout');
    return 'session ended';
  }
  if (!password) return `the API token ${login.token_id} stays valid until ${when(login.expires_at)}: revoke it with \`jobrunner logout\` on a terminal (or JOBRUNNER_PASSWORD), or DELETE /auth/tokens/${login.token_id}`;
  const session = await passwordSession(new Api({ server: login.server, token: null, login: null }), login.email, password);
  const asSession = new Api({ server: login.server, token: session.token, login: null });
  try {
    await asSession.request('DELETE', `/auth/tokens/${encodeURIComponent(login.token_id ?? '')}`, { accept: [404] });
  } finally {
    await asSession.request('POST', '/auth/logout', { accept: [401, 403] });
  }
  return 'API token revoked';
}

async function revokeQuietly(login: StoredLogin, password: string): Promise<void> {
  try {
    await revoke(login, password);
  } catch {
    // The previous token may be expired or revoked already.
  }
}

export async function logout(ctx: Ctx): Promise<void> {
  const login = ctx.api.target.login;
  if (!login) {
    if (process.env.JOBRUNNER_TOKEN) throw new CliError('the token comes from JOBRUNNER_TOKEN: unset it (nothing is stored to forget)');
    process.stderr.write(`not logged in to ${ctx.api.target.server}\n`);
    return;
  }
  const password = login.token_kind === 'api' ? await readPassword({ env: 'JOBRUNNER_PASSWORD', prompt: `password for ${login.email}, to revoke the API token (empty: keep it): `, stdin: false }) : null;
  let outcome: string;
  try {
    outcome = await revoke(login, password);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    // The token may be expired or revoked already, or the server gone: forget it all the same.
    outcome = `not revoked on the server (${err.message})`;
  }
  removeLogin();
  process.stderr.write(`logged out of ${login.server} (${login.email}): ${outcome}\n`);
}

export async function whoami(ctx: Ctx): Promise<void> {
  if (!ctx.api.target.token) throw new CliError(`not logged in to ${ctx.api.target.server}: run \`jobrunner login\``, EXIT.auth);
  const me = await ctx.api.get<Me>('/users/me');
  if (ctx.json) return printJson(me);
  const login = ctx.api.target.login;
  process.stdout.write(
    fields([
      ['email', me.email],
      ['role', me.role],
      ['id', me.id],
      ['server', ctx.api.target.server],
      ['token', login ? `${login.token_kind === 'api' ? `API token ${login.token_id}` : 'session'}, valid until ${when(login.expires_at)}` : 'JOBRUNNER_TOKEN'],
      ['job limit', `${me.effective_max_concurrent_jobs} running at once`],
      ['jobs', `${me.running_jobs} running, ${me.pending_jobs} pending`],
    ]),
  );
}
