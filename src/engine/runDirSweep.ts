// A job that names no working_dir runs in DATA_DIR/runs/<job id> on the host
// of the worker that ran it. Purge and retention remove that directory when
// they run on the same host; in scale-out they may run in a process on
// another host, which deletes the row but cannot reach the directory. So
// every worker removes, on its own host, the run directories whose job no
// longer exists. A row is written before its directory is made, so a
// directory without a row is always left over, never about to be used.
import { opendir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from '../db/client.js';
import type { Logger } from '../logger.js';
import { isId } from '../services/ids.js';

const IDS_PER_QUERY = 500;

/** Removes the run directories under `runsDir` whose job is gone; returns how many. Memory stays bounded however many there are. */
export async function sweepRunDirs(db: Database, runsDir: string, log: Logger): Promise<number> {
  let dir;
  try {
    dir = await opendir(runsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  const removeOrphans = async (ids: string[]) => {
    const kept = new Set((await db.prisma.job.findMany({ where: { id: { in: ids } }, select: { id: true } })).map((j) => j.id));
    for (const id of ids) {
      if (kept.has(id)) continue;
      await rm(join(runsDir, id), { recursive: true, force: true });
      removed++;
    }
  };
  const ids: string[] = [];
  // Only what this service made: directories named by a job id.
  for await (const entry of dir) {
    if (!entry.isDirectory() || !isId(entry.name)) continue;
    ids.push(entry.name);
    if (ids.length === IDS_PER_QUERY) await removeOrphans(ids.splice(0));
  }
  if (ids.length) await removeOrphans(ids);
  if (removed) log.info('run directories of deleted jobs removed', { runsDir, removed });
  return removed;
}
