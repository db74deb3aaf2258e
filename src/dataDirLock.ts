// One server per SQLite data directory, by an OS lock: DATA_DIR/server.lock is
// a SQLite file held in exclusive locking mode, i.e. a POSIX record lock. The
// kernel drops it when the process ends however it ends, so a restart after a
// SIGKILL starts, and a reused pid cannot keep it; record locks are not
// inherited across fork, so the spawner helper and jobs never hold it.
// DATA_DIR/server.pid names the holder in the refusal and, when a new server
// finds it left behind, tells that the previous one did not stop cleanly.
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export class DataDirLocked extends Error {}

export interface DataDirLock {
  readonly path: string;
  /** The pid of a previous holder that ended without releasing (killed), if one is recorded. */
  readonly tookOverFrom: number | null;
  release(): void;
}

function recordedPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'server.lock');
  const pidPath = join(dataDir, 'server.pid');
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // Any write takes the exclusive lock, which this locking mode keeps until the connection closes.
    db.exec(`BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held (pid INTEGER); DELETE FROM held; INSERT INTO held VALUES (${process.pid}); COMMIT`);
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    const pid = recordedPid(pidPath);
    throw new DataDirLocked(
      `data directory ${dataDir} is in use by another jobrunner server${pid ? ` (pid ${pid})` : ''}; with SQLite only one server may use a data directory: stop it or set another DATA_DIR`,
    );
  }
  const tookOverFrom = recordedPid(pidPath);
  writeFileSync(pidPath, `${process.pid}\n`);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try { unlinkSync(pidPath); } catch { /* already gone */ }
    db.close();
  };
  process.once('exit', release);
  return { path, tookOverFrom, release };
}
