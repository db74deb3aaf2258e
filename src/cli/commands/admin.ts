// users ls|create|update, limits get|set (admins).
import { type Ctx, str } from '../context.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import { printJson, table, when } from '../output.js';
import { readPassword } from '../password.js';

interface UserRead {
  id: string;
  email: string;
  role: string;
  is_active: boolean;
  max_concurrent_jobs: number | null;
  created_at: string;
}

interface LimitsRead {
  default_max_concurrent_jobs: number;
  overrides: { user_id: string; email: string; max_concurrent_jobs: number }[];
}

const USER_FIELDS = { email: '--email', role: '--role', password: 'password', max_concurrent_jobs: '--max-jobs', is_active: '--activate/--deactivate' };

/** A job limit argument: a whole number, or `none` (null) where clearing is allowed. */
function limitValue(raw: string, what: string, command: string, allowNone: boolean): number | null {
  if (allowNone && raw === 'none') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what} takes a whole number${allowNone ? ' or none' : ''}, not ${JSON.stringify(raw)}`, command);
  return n;
}

/** A user's id, given an id or an email. */
async function userId(ctx: Ctx, ref: string): Promise<string> {
  if (!ref.includes('@')) return ref;
  const users = await ctx.api.get<UserRead[]>('/users');
  const found = users.find((u) => u.email.toLowerCase() === ref.toLowerCase());
  if (!found) throw new CliError(`no user ${ref}`, EXIT.notFound);
  return found.id;
}

function printUsers(users: UserRead[]) {
  process.stdout.write(table(['ID', 'EMAIL', 'ROLE', 'ACTIVE', 'MAX JOBS', 'CREATED'], users.map((u) => [u.id, u.email, u.role, u.is_active ? 'yes' : 'no', u.max_concurrent_jobs === null ? 'default' : String(u.max_concurrent_jobs), when(u.created_at)])));
}

export async function usersLs(ctx: Ctx): Promise<number> {
  const users = await ctx.api.get<UserRead[]>('/users');
  if (ctx.json) return printJson(users), 0;
  printUsers(users);
  return 0;
}

const newPassword = (email: string) => readPassword({ env: 'NEW_USER_PASSWORD', prompt: `new password for ${email}: `, stdin: true });

export async function usersCreate(ctx: Ctx): Promise<number> {
  const email = str(ctx.values, 'email');
  if (!email) throw new UsageError('`users create` needs --email', 'users create');
  const r = str(ctx.values, 'role') ?? 'operator';
  const max = str(ctx.values, 'max-jobs');
  const password = await newPassword(email);
  if (!password) throw new CliError('no password given (NEW_USER_PASSWORD, a terminal prompt, or stdin)', EXIT.usage);
  const user = await ctx.api.post<UserRead>('/users', { email, password, role: r, ...(max !== undefined && { max_concurrent_jobs: limitValue(max, '--max-jobs', 'users create', false) }) }, { fields: USER_FIELDS });
  if (ctx.json) return printJson(user), 0;
  process.stdout.write(`created ${user.role} ${user.email} (${user.id})\n`);
  return 0;
}

export async function usersUpdate(ctx: Ctx): Promise<number> {
  const v = ctx.values;
  if (v.activate && v.deactivate) throw new UsageError('--activate and --deactivate: pick one', 'users update');
  const r = str(v, 'role');
  const max = str(v, 'max-jobs');
  const body: Record<string, unknown> = {
    ...(r !== undefined && { role: r }),
    ...(v.activate === true && { is_active: true }),
    ...(v.deactivate === true && { is_active: false }),
    ...(max !== undefined && { max_concurrent_jobs: limitValue(max, '--max-jobs', 'users update', true) }),
  };
  const ref = ctx.positionals[0]!;
  if (v.password) {
    const password = await newPassword(ref);
    if (!password) throw new CliError('no password given (NEW_USER_PASSWORD, a terminal prompt, or stdin)', EXIT.usage);
    body.password = password;
  }
  if (!Object.keys(body).length) throw new UsageError('nothing to change: give --role, --activate, --deactivate, --max-jobs or --password', 'users update');
  const id = await userId(ctx, ref);
  const user = await ctx.api.request<UserRead>('PATCH', `/users/${encodeURIComponent(id)}`, { body, notFound: { what: 'user', id: ref }, fields: USER_FIELDS });
  if (ctx.json) return printJson(user.body), 0;
  printUsers([user.body]);
  return 0;
}

function printLimits(l: LimitsRead) {
  process.stdout.write(`default: ${l.default_max_concurrent_jobs} running jobs per user\n`);
  if (l.overrides.length) process.stdout.write(table(['USER', 'EMAIL', 'MAX JOBS'], l.overrides.map((o) => [o.user_id, o.email, String(o.max_concurrent_jobs)])));
}

export async function limitsGet(ctx: Ctx): Promise<number> {
  const l = await ctx.api.get<LimitsRead>('/admin/limits');
  if (ctx.json) return printJson(l), 0;
  printLimits(l);
  return 0;
}

export async function limitsSet(ctx: Ctx): Promise<number> {
  const user = str(ctx.values, 'user');
  const value = limitValue(ctx.positionals[0]!, '`limits set`', 'limits set', user !== undefined);
  const fieldsMap = { fields: { max_concurrent_jobs: 'N' } };
  const l = user === undefined
    ? await ctx.api.post<LimitsRead>('/admin/limits/global', { max_concurrent_jobs: value }, fieldsMap)
    : await ctx.api.post<LimitsRead>(`/admin/limits/users/${encodeURIComponent(await userId(ctx, user))}`, { max_concurrent_jobs: value }, { ...fieldsMap, notFound: { what: 'user', id: user } });
  if (ctx.json) return printJson(l), 0;
  printLimits(l);
  return 0;
}

