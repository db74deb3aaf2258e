// Reads the host's processes from /proc (the run is root, so every
// process's environ is readable): which job markers (CHAOS_JOB) have a live
// process, for which user (CHAOS_USER), and in which process tree (attempt).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  comm: string;
  starttime: string;
}

export function readStat(pid: number): ProcInfo | null {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const open = raw.indexOf('(');
  const close = raw.lastIndexOf(')');
  if (open < 0 || close < 0) return null;
  const comm = raw.slice(open + 1, close);
  const rest = raw.slice(close + 2).split(' ');
  // rest[0] = state (field 3), rest[1] = ppid (4), rest[19] = starttime (22)
  return { pid, ppid: Number(rest[1]), state: rest[0] ?? '?', comm, starttime: rest[19] ?? '0' };
}

export function listPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57) out.push(Number(name));
  }
  return out;
}

/** Children of `pid` (every thread's), from /proc/<pid>/task/<tid>/children. */
export function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim().split(/\s+/)) if (c) out.add(Number(c));
      } catch {
        /* thread gone */
      }
    }
  } catch {
    /* process gone */
  }
  return [...out];
}

export function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

function readEnv(pid: number): Map<string, string> | null {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return null;
  }
  const env = new Map<string, string>();
  for (const kv of raw.split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0 && kv.startsWith('CHAOS_')) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return env;
}

function pidNs(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

export interface MarkedProc extends ProcInfo {
  marker: string;
  user: string;
  /** Identifies the process tree (one attempt): the job's PID namespace when isolated, else the topmost marked ancestor. */
  tree: string;
}

interface Cached {
  marker: string | null;
  user: string;
  ns: string | null;
}

/**
 * A scanner keeping what never changes for a process image (pid, start time
 * and command name identify it: exec changes the name): its markers and PID
 * namespace. Only markers starting with `prefix` count (other runs' jobs
 * are ignored).
 */
export function createScanner(prefix: string) {
  const hostNs = pidNs(process.pid);
  let cache = new Map<string, Cached>();
  return {
    scan(): { procs: MarkedProc[]; all: Map<number, ProcInfo> } {
      const all = new Map<number, ProcInfo>();
      const next = new Map<string, Cached>();
      const marked: Array<ProcInfo & Cached> = [];
      for (const pid of listPids()) {
        const st = readStat(pid);
        if (!st) continue;
        all.set(pid, st);
        if (st.state === 'Z' || st.state === 'X') continue;
        const key = `${pid}:${st.starttime}:${st.comm}`;
        let c = cache.get(key);
        if (!c) {
          const env = readEnv(pid);
          if (!env) continue; // gone meanwhile: not cached, not counted
          const marker = env.get('CHAOS_JOB');
          if (marker && marker.startsWith(prefix)) {
            // An exiting process has dropped its namespaces before it becomes a zombie: not counted, not cached.
            const ns = pidNs(pid);
            if (!ns) continue;
            c = { marker, user: env.get('CHAOS_USER') ?? '?', ns };
          } else c = { marker: null, user: '', ns: null };
        }
        next.set(key, c);
        if (c.marker) marked.push({ ...st, ...c });
      }
      cache = next;
      const byPid = new Map(marked.map((m) => [m.pid, m]));
      const procs: MarkedProc[] = marked.map((m) => {
        let tree: string;
        if (m.ns && m.ns !== hostNs) tree = m.ns;
        else {
          // Not isolated: the topmost ancestor carrying the same marker.
          let top = m;
          for (let hops = 0; hops < 64; hops++) {
            const parent = byPid.get(top.ppid);
            if (!parent || parent.marker !== m.marker) break;
            top = parent;
          }
          tree = `root:${top.pid}:${top.starttime}`;
        }
        return { pid: m.pid, ppid: m.ppid, state: m.state, comm: m.comm, starttime: m.starttime, marker: m.marker!, user: m.user, tree };
      });
      return { procs, all };
    },
  };
}
