#!/usr/bin/env node
// Process roles: `serve` (default; API + worker), `serve --no-worker`,
// `worker`, and admin commands `migrate` and `create-user`; `--help`, `--version`.
import './heapPolicy.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { VERSION } from './version.js';

const USAGE = `jobrunner ${VERSION}: runs shell commands as jobs behind a REST and GraphQL API

usage: jobrunner <command> [options]

commands:
  serve                 API server with an in-process worker (the default when no command is given)
  serve --no-worker     API server only; workers run elsewhere (PostgreSQL only)
  worker                a worker without the API (PostgreSQL only)
  migrate               apply the database migrations and exit
  create-user --email EMAIL [--role admin|operator|viewer]
                        create a user (password in NEW_USER_PASSWORD)
  help, --help, -h      print this text
  --version, -v         print the version

environment (see README.md for the rest):
  DATA_DIR      data directory: SQLite database, secrets, job workspace (default ./data)
  DATABASE_URL  postgresql://... for a shared database, or file:<path>; unset: SQLite in DATA_DIR
  REDIS_URL     Redis for events across several processes (optional)
  PORT          HTTP port (default 8000)
`;

function usageError(message: string): never {
  process.stderr.write(`error: ${message}\nrun \`jobrunner --help\` for the commands and options\n`);
  process.exit(2);
}

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
  const log = createLogger(cfg.logLevel, cfg.log);
  // SQLite is single-process: a second server on the same data directory is refused.
  // PostgreSQL deployments share the database between processes by design.
  if (cfg.database.provider === 'sqlite') {
    const { lockDataDir, DataDirLocked } = await import('./dataDirLock.js');
    try {
      const lock = lockDataDir(cfg.dataDir);
      if (lock.tookOverFrom !== null) log.warn('took over a stale data directory lock: its process is gone', { path: lock.path, deadPid: lock.tookOverFrom });
    } catch (err) {
      if (err instanceof DataDirLocked) fail(err.message);
      throw err;
    }
  }
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
  const log = createLogger(cfg.logLevel, cfg.log);
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

const argv = process.argv.slice(2);
const [command = 'serve', ...rest] = argv;
if (argv.length === 0) process.stderr.write('no command given: running `serve`; see --help\n');
if (['help', '--help', '-h'].includes(command) || rest.includes('--help') || rest.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (command === '--version' || command === '-v') {
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}
const run: Record<string, () => Promise<void>> = {
  serve: () => serve({ worker: !rest.includes('--no-worker'), http: true }),
  worker: () => serve({ worker: true, http: false }),
  migrate,
  'create-user': () => createUser(rest),
};
// The options each command takes (create-user reads its own).
const options: Record<string, string[] | null> = { serve: ['--no-worker'], worker: [], migrate: [], 'create-user': null };
const fn = run[command];
if (!fn) usageError(`unknown ${command.startsWith('-') ? 'option' : 'command'} ${JSON.stringify(command)}; use one of: ${Object.keys(run).join(', ')}`);
const allowed = options[command];
const unknown = allowed ? rest.find((a) => !allowed.includes(a)) : undefined;
if (unknown !== undefined) usageError(`unknown option ${JSON.stringify(unknown)} for \`${command}\``);
fn().catch((err) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
