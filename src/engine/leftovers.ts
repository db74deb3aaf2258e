// What a worker host can be left with after jobs it can no longer see:
//
// - Run directories. A job that names no working_dir runs in
//   DATA_DIR/runs/<job id> on the host of the worker that ran it. Purge and
//   retention remove that directory when they run on the same host; in
//   scale-out they may run in a process on another host, which deletes the
//   row but cannot reach the directory. A row is written before its
//   directory is made, so a directory without a row is always left over,
//   never about to be used.
// - Job cgroups of a worker that died outright (kill -9, a crash): its helper
//   died with it and nobody removes them. A job's cgroup is made only after
//   its claim committed (the row says running with that attempt) and its
//   helper reads what it needs from it before the outcome is written, so a
//   cgroup of one of our jobs that is not running with that attempt is no
//   one's. Every deployment on the host shares the directory of job cgroups:
//   a cgroup whose job this database does not hold is not ours to judge.
//
// Every worker sweeps its host when it starts and then hourly.
import { opendir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from '../db/client.js';
import type { Logger } from '../logger.js';
import { isId } from '../services/ids.js';

const IDS_PER_QUERY = 500;

/** Jobs by id, IDS_PER_QUERY at a time: how much of each the sweeps need. */
async function jobsById(db: Database, ids: string[]): Promise<Map<string, { status: string; attempt: number }>> {
  const found = new Map<string, { status: string; attempt: number }>();
  for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
    const rows = await db.prisma.job.findMany({ where: { id: { in: ids.slice(i, i + IDS_PER_QUERY) } }, select: { id: true, status: true, attempt: true } });
    for (const r of rows) found.set(r.id, r);
  }
  return found;
}

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
    const kept = await jobsById(db, ids);
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

// `${job id}-${attempt}-${worker pid}` (worker.ts names them); anything else is not ours to judge.
const CGROUP_NAME = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-(\d+)-[0-9a-z]+$/;

/**
 * The job cgroups among `names` whose job is in this database and not running
 * with that attempt. A job this database does not hold may be another
 * deployment's on the same host (they share the directory of job cgroups):
 * its cgroup is left alone.
 */
export async function staleCgroups(db: Database, names: string[]): Promise<string[]> {
  const named = names.flatMap((name) => {
    const m = CGROUP_NAME.exec(name);
    return m ? [{ name, id: m[1]!, attempt: Number(m[2]) }] : [];
  });
  const jobs = await jobsById(db, [...new Set(named.map((c) => c.id))]);
  return named.filter((c) => {
    const job = jobs.get(c.id);
    return job && !(job.status === 'running' && job.attempt === c.attempt);
  }).map((c) => c.name);
}
