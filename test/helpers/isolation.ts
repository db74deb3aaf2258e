// Helpers for the job isolation suites (issue #11): the host's view of a
// job's processes (by a marker in their command line) and of its cgroup,
// and the real CLI server started as another, unprivileged user.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { freePort, REPO_ROOT, TERMINAL, waitStatus, type Api, type JobRead, type SpawnedServer } from './jobs.js';
import { restClient, tokenClient, waitFor } from './server.js';

// ---- processes ---------------------------------------------------------

/** A fresh marker for a command line, e.g. mark('1141') -> '1141.48213' (GNU sleep takes fractions). */
export function marker(base: string): string {
  return `${base}.${randomInt(10_000, 100_000)}`;
}

function cmdline(pid: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return null;
  }
}

function isZombie(pid: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/** Live (non-zombie) host processes whose command line (arguments joined by spaces) contains `text`. */
export function hostPidsWithMarker(text: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const c = cmdline(name);
    if (c !== null && c.includes(text) && !isZombie(name)) out.push(Number(name));
  }
  return out;
}

/** Waits (bounded) until no live host process carries `text`; returns the survivors' command lines (empty: all gone). */
export async function survivorsAfter(text: string, timeoutMs = 5000): Promise<string[]> {
  try {
    await waitFor(() => hostPidsWithMarker(text).length === 0, timeoutMs, 50);
    return [];
  } catch {
    return hostPidsWithMarker(text).map((pid) => `${pid}: ${cmdline(String(pid))}`);
  }
}

/** Cleanup: SIGKILL every process that carries one of our markers. */
export function killMarked(texts: Iterable<string>): void {
  for (const t of texts) {
    for (const pid of hostPidsWithMarker(t)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
  }
}

/** Waits until a job has left `pending`; fails at once, with the job's error, unless it is running. */
export async function startedRunning(s: Api, token: string, id: string, timeoutMs = 30_000): Promise<JobRead> {
  const job = await waitStatus(s, token, id, ['running', ...TERMINAL], timeoutMs);
  if (job.status !== 'running') throw new Error(`job ${id} (${job.name}) did not run: ${job.status}, error ${JSON.stringify(job.error)}, exit ${job.exit_code}`);
  return job;
}

// ---- cgroups -------------------------------------------------------------

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

/** A job's cgroups as they exist now: `<cgroup2 mount>/jobrunner/<jobId>-<attempt>` (attempt: letters and digits). */
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
  const re = new RegExp(`^${jobId.replace(/[^A-Za-z0-9-]/g, '\\$&')}-[A-Za-z0-9]+$`);
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

// ---- the real server as a child process -----------------------------------

export interface CliServer extends SpawnedServer {
  /** The server's (node's) pid. */
  pid: number;
  /** SIGKILL if still running, and wait for the exit. */
  kill(): Promise<void>;
}

export interface CliServerOptions {
  /** Run as this uid/gid, with no supplementary groups (the server started unprivileged). */
  user?: { uid: number; gid: number };
  /** Reach the repository through a bind mount (done anyway when `user` cannot read it in place). */
  viaBindMount?: boolean;
}

/**
 * What `uid` lacks to run the sources in place (node, the repository,
 * tsx, the native helper), or null when it lacks nothing. Asks the kernel:
 * a node process as that user tries each path.
 */
export function unreadableFor(uid: number, gid: number): string | null {
  const checks: [string, number][] = [
    [REPO_ROOT, constants.R_OK | constants.X_OK],
    [join(REPO_ROOT, 'src', 'main.ts'), constants.R_OK],
    [join(REPO_ROOT, 'node_modules', 'tsx', 'package.json'), constants.R_OK],
  ];
  const helper = join(REPO_ROOT, 'dist', 'jobrunner-spawner');
  if (existsSync(helper)) checks.push([helper, constants.X_OK]);
  const script = `const fs=require('fs');for(const [p,m] of ${JSON.stringify(checks)}){try{fs.accessSync(p,m)}catch(e){console.log(p+': '+e.code);process.exit(1)}}`;
  const r = spawnSync(process.execPath, ['-e', script], { uid, gid, cwd: '/', encoding: 'utf8', timeout: 20_000 });
  if (r.error) return `${process.execPath}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`;
  return r.status === 0 ? null : (r.stdout.trim() || r.stderr.trim() || `exit ${r.status}`);
}

/**
 * The real CLI (`node --import tsx src/main.ts serve`) as a child process,
 * like spawnServer in jobs.ts, plus its pid, and optionally running as
 * another user. A user who cannot read the repository where it is (a
 * clone under /root, say) gets it through a private mount namespace in
 * which the repository and node are bind-mounted under a fresh directory
 * anyone may enter; the server then runs there as that user (setpriv).
 */
export async function startCliServer(env: Record<string, string>, opts: CliServerOptions = {}, startTimeoutMs = 45_000): Promise<CliServer> {
  const port = env.PORT && env.PORT !== '0' ? env.PORT : String(await freePort());
  const fullEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env, PORT: port };
  const serve = ['--import', 'tsx', 'src/main.ts', 'serve'];

  let file = process.execPath;
  let args = serve;
  let cwd = REPO_ROOT;
  let ids: { uid?: number; gid?: number } = {};
  let view: string | null = null;
  if (opts.user) {
    const { uid, gid } = opts.user;
    if (opts.viaBindMount || unreadableFor(uid, gid) !== null) {
      view = mkdtempSync(join(tmpdir(), 'jobrunner-view-'));
      chmodSync(view, 0o755);
      mkdirSync(join(view, 'repo'));
      writeFileSync(join(view, 'node'), '');
      const script = [
        'set -e',
        'r=$1 v=$2 n=$3 u=$4 g=$5',
        'shift 5',
        'mount --bind "$r" "$v/repo"',
        'mount --bind "$n" "$v/node"',
        'cd "$v/repo"',
        'exec setpriv --reuid="$u" --regid="$g" --clear-groups -- "$v/node" "$@"',
      ].join('\n');
      file = 'unshare';
      // unshare, sh and setpriv exec in place: the pid stays the server's.
      args = ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', REPO_ROOT, view, process.execPath, String(uid), String(gid), ...serve];
      cwd = '/';
    } else {
      // libuv drops supplementary groups (setgroups(0)) when it switches uid/gid.
      ids = { uid, gid };
    }
  }

  const child = spawn(file, args, { cwd, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let gone = false;
  void exited.then(() => {
    gone = true;
    // Never recursive: should a bind mount be visible here after all, these fail instead of deleting through it.
    if (view) {
      try {
        rmSync(join(view, 'node'));
        rmdirSync(join(view, 'repo'));
        rmdirSync(view);
      } catch { /* left behind in the temporary directory */ }
    }
  });
  const api = `http://127.0.0.1:${port}${env.API_PREFIX ?? '/api/v1'}`;
  try {
    await waitFor(async () => {
      if (gone) throw new Error('server exited during start-up');
      try {
        return (await fetch(`${api}/health`)).status === 200;
      } catch {
        return false;
      }
    }, startTimeoutMs, 100);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`spawned server did not become healthy: ${(err as Error).message}\n${output}`);
  }
  return {
    child,
    pid: child.pid!,
    api,
    exited,
    request: restClient(api),
    output: () => output,
    token: tokenClient(api),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
