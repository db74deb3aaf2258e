// Runs a client command: builds its context, calls it, and turns a CliError
// into its message on stderr and its exit status.
import { contextFor, type Ctx } from './context.js';
import { UsageError } from './errors.js';
import type { Values } from './parse.js';

type Handler = (ctx: Ctx) => Promise<number | void>;

const HANDLERS: Record<string, () => Promise<Handler>> = {
  login: async () => (await import('./commands/auth.js')).login,
  logout: async () => (await import('./commands/auth.js')).logout,
  whoami: async () => (await import('./commands/auth.js')).whoami,
  submit: async () => (await import('./commands/jobs.js')).submit,
  ls: async () => (await import('./commands/jobs.js')).ls,
  show: async () => (await import('./commands/jobs.js')).show,
  logs: async () => (await import('./commands/jobs.js')).logs,
  wait: async () => (await import('./commands/jobs.js')).wait,
  cancel: async () => (await import('./commands/jobs.js')).cancel,
  purge: async () => (await import('./commands/jobs.js')).purge,
  stats: async () => (await import('./commands/jobs.js')).stats,
  'batch submit': async () => (await import('./commands/batches.js')).batchSubmit,
  'batch ls': async () => (await import('./commands/batches.js')).batchLs,
  'batch show': async () => (await import('./commands/batches.js')).batchShow,
  'batch cancel': async () => (await import('./commands/batches.js')).batchCancel,
  'users ls': async () => (await import('./commands/admin.js')).usersLs,
  'users create': async () => (await import('./commands/admin.js')).usersCreate,
  'users update': async () => (await import('./commands/admin.js')).usersUpdate,
  'limits get': async () => (await import('./commands/admin.js')).limitsGet,
  'limits set': async () => (await import('./commands/admin.js')).limitsSet,
};

/** The exit status of client command `name`. */
export async function runClient(name: string, values: Values, positionals: string[]): Promise<number> {
  const load = HANDLERS[name];
  if (!load) throw new Error(`no handler for client command ${name}`);
  const handler = await load();
  try {
    return (await handler(contextFor(values, positionals))) ?? 0;
  } catch (err) {
    // A bad option value found by the command: point at its help.
    if (err instanceof UsageError && !err.command) throw new UsageError(err.message, name);
    throw err;
  }
}
