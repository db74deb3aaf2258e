// Secrets at rest: the SQLite database (with its -wal and -shm) and the
// generated JWT secret are for the server's user alone (0600), and DATA_DIR
// cannot be listed or written by anyone else. A fresh data dir is made that
// way; an existing one is fixed at start, with one warning per file fixed.
import { chmodSync, closeSync, constants, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/**
 * Creates `file` empty with mode 0600 unless it exists. SQLite gives the
 * -wal and -shm files the database file's mode, so creating the database
 * this way before SQLite opens it keeps all three private.
 */
export function createPrivateFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

function mode(path: string): number | null {
  try {
    return statSync(path).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function fix(path: string, from: number, to: number, why: string, log: Logger): void {
  try {
    chmodSync(path, to);
    log.warn(`${path} had mode ${octal(from)} (${why}): changed to ${octal(to)}`);
  } catch (err) {
    log.warn(`${path} has mode ${octal(from)} (${why}) and could not be changed to ${octal(to)}: ${(err as Error).message}`);
  }
}

/** Makes DATA_DIR (0700 when new) and the database file (0600), and fixes looser modes found on existing ones. Call once at start, before the database is opened. */
export function secureDataDir(config: Config, log: Logger): void {
  const dir = config.dataDir;
  if (mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) {
    chmodSync(dir, 0o700); // exact, whatever the umask
  } else {
    const m = statSync(dir).mode;
    // Search (x) stays: job working directories may lie below DATA_DIR.
    if (m & 0o066) fix(dir, m, m & 0o7777 & ~0o066, 'group or others could list or write DATA_DIR', log);
  }

  const files = [join(dir, 'jwt-secret')];
  if (config.database.provider === 'sqlite') {
    const db = config.database.file;
    createPrivateFile(db);
    files.push(db, `${db}-wal`, `${db}-shm`);
  }
  for (const file of files) {
    const m = mode(file);
    if (m !== null && m & 0o077) fix(file, m, 0o600, 'open to group or others', log);
  }
}
