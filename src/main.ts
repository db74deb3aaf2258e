#!/usr/bin/env node
// The `jobrunner` executable. Server roles: `serve` (API + worker), `serve
// --no-worker`, `worker`; database commands `migrate` and `create-user`; the
// client commands (src/cli/, over HTTP) side by side. The command table is
// src/cli/spec.ts. Server modules are imported only by the server commands,
// so the client and `--help` start light.
import { CliError, EXIT, UsageError } from './cli/errors.js';
import { parseCommandLine, type Values } from './cli/parse.js';
import { commandHelp, groupHelp, mainHelp } from './cli/spec.js';
import type { Config } from './config.js';
import { VERSION } from './version.js';

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

async function config(): Promise<Config> {
  const { ConfigError, loadConfig } = await import('./config.js');
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

const ABORT_EXIT_MS = 10_000;

async function serve(role: { worker: boolean; http: boolean }) {
  await import('./heapPolicy.js');
  const cfg = await config();
  const { createLogger } = await import('./logger.js');
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
      if (lock.tookOverFrom !== null) log.warn('the previous server on this data directory did not stop cleanly (killed or crashed)', { dataDir: cfg.dataDir, previousPid: lock.tookOverFrom });
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
  const cfg = await config();
  const { applyMigrations } = await import('./db/migrate.js');
  const result = await applyMigrations(cfg.database, (msg) => process.stdout.write(msg + '\n'));
  process.stdout.write(`migrations: ${result.applied.length} applied, ${result.alreadyApplied} already applied\n`);
}

async function createUser(values: Values) {
  const email = values.email as string | undefined;
  const role = (values.role as string | undefined) ?? 'operator';
  if (!email) throw new UsageError('`create-user` needs --email', 'create-user');
  const { readPassword } = await import('./cli/password.js');
  const password = await readPassword({ env: 'NEW_USER_PASSWORD', prompt: `password for ${email}: `, stdin: true });
  if (!password) fail('no password: set NEW_USER_PASSWORD (or type it at the prompt, or pipe it on stdin)');
  const cfg = await config();
  const { createLogger } = await import('./logger.js');
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

/** Runs argv; resolves with the exit status (server commands keep running and resolve at once). */
async function main(argv: string[]): Promise<number> {
  const inv = parseCommandLine(argv);
  switch (inv.kind) {
    case 'none':
      process.stderr.write(mainHelp(VERSION));
      process.stderr.write('\nno command given (`npm start` runs `jobrunner serve`)\n');
      return EXIT.usage;
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return EXIT.ok;
    case 'help':
      process.stdout.write(inv.text === 'main' ? mainHelp(VERSION) : 'group' in inv.text ? groupHelp(inv.text.group) : commandHelp(inv.text));
      return EXIT.ok;
  }
  const { command, values, positionals } = inv;
  if (command.client) {
    // `jobrunner logs ID | head`: a reader that went away ends the command quietly, as SIGPIPE ends other tools.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(128 + 13);
    });
    const { runClient } = await import('./cli/run.js');
    return runClient(command.name, values, positionals);
  }
  switch (command.name) {
    case 'serve':
      await serve({ worker: values['no-worker'] !== true, http: true });
      return EXIT.ok;
    case 'worker':
      await serve({ worker: true, http: false });
      return EXIT.ok;
    case 'migrate':
      await migrate();
      return EXIT.ok;
    case 'create-user':
      await createUser(values);
      return EXIT.ok;
    case 'completion': {
      const shell = positionals[0];
      const { bashCompletion, zshCompletion } = await import('./cli/completion.js');
      if (shell === 'bash') process.stdout.write(bashCompletion());
      else if (shell === 'zsh') process.stdout.write(zshCompletion());
      else throw new UsageError(`no completion for ${JSON.stringify(shell)}: bash or zsh`, 'completion');
      return EXIT.ok;
    }
  }
  throw new Error(`no handler for ${command.name}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\nrun \`jobrunner ${err.command ? `${err.command} ` : ''}--help\` for ${err.command ? 'its' : 'the commands and'} options\n`);
    } else if (err instanceof CliError) {
      process.stderr.write(`error: ${err.message}\n`);
    } else {
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = err instanceof CliError ? err.exitCode : EXIT.error;
  },
);
