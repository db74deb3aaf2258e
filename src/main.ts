#!/usr/bin/env node
// Process roles: `serve` (default; API + worker), `serve --no-worker`,
// `worker`, and admin commands `migrate` and `create-user`.
import './heapPolicy.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

const ABORT_EXIT_MS = 10_000;

async function serve(role: { worker: boolean; http: boolean }) {
  const cfg = config();
  if (!role.http && cfg.database.provider === 'sqlite') {
    fail('the worker role needs a shared PostgreSQL database (DATABASE_URL=postgresql://...); with SQLite, `serve` runs jobs in-process');
  }
  const log = createLogger(cfg.logLevel);
  const { buildApp } = await import('./server.js');
  const app = await buildApp(cfg, { log, ...role });
  await app.start();
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal, graceSeconds: cfg.shutdownGraceMs / 1000 });
    // A second signal means: do not wait for the jobs. They are killed and
    // recorded before the exit, so none runs on unsupervised or is later
    // reported lost; the timer bounds that if the database does not answer.
    let code = 0;
    const hurry = (second: string) => {
      log.warn('second signal: killing running jobs now', { signal: second });
      code = 130;
      app.worker?.abort();
      setTimeout(() => process.exit(130), ABORT_EXIT_MS).unref();
    };
    process.once('SIGTERM', () => hurry('SIGTERM'));
    process.once('SIGINT', () => hurry('SIGINT'));
    await app.stop();
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

async function migrate() {
  const cfg = config();
  const { applyMigrations } = await import('./db/migrate.js');
  const result = await applyMigrations(cfg.database, (msg) => process.stdout.write(msg + '\n'));
  process.stdout.write(`migrations: ${result.applied.length} applied, ${result.alreadyApplied} already applied\n`);
}

async function createUser(args: string[]) {
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const email = opt('email');
  const role = opt('role') ?? 'operator';
  const password = process.env.NEW_USER_PASSWORD ?? opt('password');
  if (!email || !password) fail('usage: create-user --email EMAIL [--role admin|operator|viewer] (password in NEW_USER_PASSWORD)');
  const cfg = config();
  const { openDatabase } = await import('./db/client.js');
  const { createUserService } = await import('./services/users.js');
  const { createSessionStore } = await import('./services/sessions.js');
  const { createAuditService } = await import('./services/audit.js');
  const { createLocalBus } = await import('./events/bus.js');
  const db = await openDatabase(cfg.database);
  const log = createLogger(cfg.logLevel);
  const deps = { db, config: cfg, log };
  const users = createUserService(deps, { onLimitsChange: () => {}, sessions: createSessionStore(deps, createLocalBus()), audit: createAuditService(deps) });
  // Whoever can run this command owns the database already: it acts as an admin, and the audit trail says "cli".
  const system = { id: 'cli', email: 'cli', role: 'admin' as const, scopes: null, sessionId: null, tokenId: null, address: 'cli' };
  try {
    const user = await users.create(system, { email, password, role });
    process.stdout.write(`created ${user.role} ${user.email} (${user.id})\n`);
  } catch (err) {
    fail((err as Error).message);
  } finally {
    await db.close();
  }
}

const [command = 'serve', ...rest] = process.argv.slice(2);
const run: Record<string, () => Promise<void>> = {
  serve: () => serve({ worker: !rest.includes('--no-worker'), http: true }),
  worker: () => serve({ worker: true, http: false }),
  migrate,
  'create-user': () => createUser(rest),
};
const fn = run[command];
if (!fn) fail(`unknown command ${JSON.stringify(command)}; use one of: ${Object.keys(run).join(', ')}`);
fn().catch((err) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
