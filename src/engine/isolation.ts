// What isolation jobs get: how the spawner helper is asked for it, what it
// reported it could set up on this host, and each job's share of it (its
// identity, cgroup, limits and the root its working directory is opened
// beneath). The kernel work itself is native/isolate.c.
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config.js';
import type { Job } from '../generated/sqlite/client.js';
import type { LaunchIsolation } from './launcher.js';

/** full: own uid per user + namespaces + cgroup; reduced: unprivileged user namespace; off: JOB_ISOLATION=off; none: impossible here, jobs refused. */
type IsolationLevel = 'full' | 'reduced' | 'off' | 'none';

export interface IsolationReport {
  level: IsolationLevel;
  /** As whom jobs run. */
  identity: string;
  /** Kernel features in use, e.g. "pid-namespace", "cgroup2-kill", "memory-v1". */
  features: string[];
  /** What is missing on this host and what is done instead; empty when nothing is. */
  missing: string[];
  /** How jobs reach the network. */
  network: string;
}

/** What the helper is started with. */
export interface HelperIsolation {
  /** Directories jobs must not see (besides /tmp, which each job gets empty). */
  hide: string[];
  network: Config['jobNetwork'];
  group: number | null;
}

// Where PostgreSQL puts its Unix socket by default (Debian; elsewhere /tmp, which jobs get empty).
const PG_SOCKET_DIRS = ['/var/run/postgresql', '/run/postgresql'];

export function helperIsolation(config: Config): HelperIsolation | null {
  if (config.jobIsolation === 'off') return null;
  const hide = [config.dataDir];
  if (config.database.provider === 'sqlite') hide.push(dirname(config.database.file));
  else {
    // A firewall sees TCP only: the service's PostgreSQL socket (often trusted locally) is hidden instead.
    const socketDir = new URL(config.database.url).searchParams.get('host');
    hide.push(...(socketDir?.startsWith('/') ? [socketDir] : PG_SOCKET_DIRS));
  }
  const real = hide.filter((dir) => existsSync(dir)).map((dir) => realpathSync(dir));
  return { hide: [...new Set(real)], network: config.jobNetwork, group: config.jobGroup };
}

// What each missing word from the helper costs, said for an administrator.
const MISSING: Record<string, string> = {
  'own-uids': "the server cannot switch uids (not root): jobs run as the server's uid inside a user namespace, so file modes do not separate them from the server or each other",
  namespaces: 'neither PID and mount namespaces as root nor an unprivileged user namespace are available',
  'spawner-helper': 'the native spawner helper (dist/jobrunner-spawner) is not built or did not start; the Node helper cannot isolate jobs',
  'memory-cgroup': 'no memory cgroup: memory_mb is not enforced',
  'pids-cgroup': 'no pids cgroup: pids is not enforced',
  'cpu-cgroup': 'no CPU accounting cgroup: cpu_seconds holds each process, not the whole job',
  'cgroup-tracking': "no writable cgroup: a job's descendants are tracked by its PID namespace alone",
};

export function describeIsolation(level: string, wanted: boolean, kind: 'native' | 'node', features: string, missing: string): Omit<IsolationReport, 'network'> {
  if (!wanted) return { level: 'off', identity: "the server's uid (JOB_ISOLATION=off)", features: [], missing: [] };
  // The Node helper answers a plain "r": it cannot isolate.
  if (kind === 'node') return { level: 'none', identity: 'nobody: jobs are refused', features: [], missing: [MISSING['spawner-helper']!] };
  const words = (list: string) => (list === '-' ? [] : list.split(','));
  const known = level === 'full' || level === 'reduced' ? level : 'none';
  return {
    level: known,
    identity: known === 'full' ? 'a uid of its own per user (JOB_UID_RANGE), never root nor the server' : known === 'reduced' ? "the server's uid, inside a user namespace" : 'nobody: jobs are refused',
    features: words(features),
    missing: words(missing).map((w) => MISSING[w] ?? w),
  };
}

/** How jobs reach the network, with what the firewall guard did (null: not tried). */
export function networkReport(config: Config, level: IsolationReport['level'], guard: { active: boolean; detail: string } | null): string {
  if (level === 'off' || level === 'none') return 'host';
  if (config.jobNetwork === 'none') return 'none (loopback only)';
  return `host (${guard?.detail ?? 'backing services not guarded'})`;
}

/** One uid per user, the same on every worker of the host (and every host), from the configured range. */
function jobUid(ownerId: string, range: Config['jobUids']): number {
  const size = range.last - range.first + 1;
  const uid = range.first + (createHash('sha256').update(ownerId).digest().readUIntBE(0, 6) % size);
  // Never the server's own uid, should the range include it.
  return uid === process.getuid?.() ? range.first + ((uid - range.first + 1) % size) : uid;
}

/**
 * A job's isolation: its run directory lies beneath DATA_DIR/runs, a
 * working_dir beneath the allowed root that holds it (null: none does any more).
 */
export function isolationFor(job: Job, config: Config, limits: LaunchIsolation['limits'], attempt: string, rootOf: (dir: string) => string | null): LaunchIsolation | null {
  const root = job.ownsWorkingDir ? join(config.dataDir, 'runs') : rootOf(job.workingDir);
  if (!root) return null;
  const uid = jobUid(job.ownerId, config.jobUids);
  return { root, cgroup: `${job.id}-${attempt}`, uid, gid: uid, limits };
}
