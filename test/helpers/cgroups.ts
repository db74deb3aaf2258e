// A job's cgroups on this host, read the way an administrator would: where
// the spawner helper puts them (<cgroup v2>/jobrunner/<job id>-<attempt>)
// and which host pids they hold. Tests find a job's processes here, not
// through a pid the job printed (inside its PID namespace $$ is local).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where cgroup v2 is mounted on this host (from /proc/self/mountinfo), or null (no cgroup v2). */
export function cgroup2Mount(): string | null {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  for (const line of info.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!before || !after || after.split(' ')[0] !== 'cgroup2') continue;
    // Mount points escape space, tab, newline and backslash as octal.
    return before.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return null;
}

/** A job's cgroups as they exist now: `<cgroup2 mount>/jobrunner/<jobId>-<attempt>` (attempt: letters, digits and dashes). */
export function jobCgroups(jobId: string): string[] {
  const mount = cgroup2Mount();
  if (!mount) return [];
  const root = join(mount, 'jobrunner');
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const re = new RegExp(`^${jobId.replace(/[^A-Za-z0-9-]/g, '\\$&')}-[A-Za-z0-9][A-Za-z0-9-]*$`);
  return names.filter((n) => re.test(n)).map((n) => join(root, n));
}

function procsUnder(dir: string): number[] {
  const out: number[] = [];
  try {
    out.push(...readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number));
  } catch { /* removed meanwhile */ }
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...procsUnder(join(dir, e.name)));
  } catch { /* removed meanwhile */ }
  return out;
}

/** Host pids in a job's cgroups (child cgroups included); empty once they are removed or empty. */
export function cgroupProcs(jobId: string): number[] {
  return jobCgroups(jobId).flatMap(procsUnder);
}

