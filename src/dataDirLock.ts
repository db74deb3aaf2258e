// One server per SQLite data directory: an exclusive lock file DATA_DIR/.lock
// holding the owner's pid, created with O_EXCL. A lock whose pid is dead (the
// owner was SIGKILLed) is taken over with a warning. Only the pid matters, so
// the spawner helper, which never opens the file, holds nothing.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class DataDirLocked extends Error {}

export interface DataDirLock {
  readonly path: string;
  /** The dead pid whose lock was taken over, if any. */
  readonly tookOverFrom: number | null;
  release(): void;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return false; // a reused pid (pid 1 in a restarted container) is this process, not a rival
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holder(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, '.lock');
  let tookOverFrom: number | null = null;
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) throw err;
      const pid = holder(path);
      if (pid !== null && alive(pid)) {
        throw new DataDirLocked(
          `data directory ${dataDir} is in use by another jobrunner server (pid ${pid}, lock file ${path}); with SQLite only one server may use a data directory: stop it or set another DATA_DIR`,
        );
      }
      // Dead or unreadable owner: take it over (an empty file may be one being written right now, so re-read once).
      if (pid === null && attempt === 0) continue;
      tookOverFrom = pid;
      try { unlinkSync(path); } catch { /* someone else took it over first: retry decides */ }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (holder(path) === process.pid) {
        try { unlinkSync(path); } catch { /* already gone */ }
      }
    };
    process.once('exit', release);
    return { path, tookOverFrom, release };
  }
}
