// Helpers for the job isolation suites (issue #11): the host's view of a
// job's processes (by a marker in their command line) and of its cgroup,
// the real CLI server started as another, unprivileged user, and the
// attacks that isolation.test.ts and reduced.test.ts both make.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { expect } from 'vitest';
import {
  childProcesses, freePort, getJob, REPO_ROOT, runJob, serverStarted, submit, TERMINAL, waitStatus, waitTerminal, type Api, type JobLogs, type JobRead, type SpawnedServer,
} from './jobs.js';
import { waitFor } from './server.js';

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
  // Never recursive: should a bind mount be visible here after all, these fail instead of deleting through it.
  if (view) {
    const dir = view;
    child.once('exit', () => {
      try {
        rmSync(join(dir, 'node'));
        rmdirSync(join(dir, 'repo'));
        rmdirSync(dir);
      } catch { /* left behind in the temporary directory */ }
    });
  }
  const server = await serverStarted(child, `http://127.0.0.1:${port}${env.API_PREFIX ?? '/api/v1'}`, startTimeoutMs);
  const { exited } = server;
  return {
    ...server,
    pid: child.pid!,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

// ---- attacks made in both suites (the full and the reduced isolation) ------
//
// Each runs the attacker's job(s) and asserts what must hold whatever the
// kind of isolation; what differs by kind (the uids jobs run as) the suites
// assert on what these return.

const lines = (text: string) => text.split('\n').filter(Boolean);

/**
 * Attack 1, part one: a job cats /proc/<server>/environ. It must fail, and
 * nothing it prints (stdout or stderr) may hold any of `secrets` (values
 * from the server's environment, or names such as 'JWT_SECRET=').
 */
export async function attackServerEnviron(server: Api, token: string, serverPid: number, secrets: string[]): Promise<void> {
  const { job, logs } = await runJob(server, token, { name: 'environ', command: ['cat', `/proc/${serverPid}/environ`] });
  const out = logs.stdout + logs.stderr;
  for (const secret of secrets) expect(out).not.toContain(secret);
  expect(job.status).toBe('failed');
  expect(job.exit_code).not.toBe(0);
}

/** Attack 1, part two: a job lists /proc. It sees its own processes, and none of the server's (nor its helper's). */
export async function attackServerPids(server: Api, token: string, serverPid: number): Promise<void> {
  const { job, logs } = await runJob(server, token, { name: 'ls-proc', command: ['ls', '/proc'] });
  expect(job.status, `error ${job.error}; ${logs.stderr}`).toBe('success');
  const pids = lines(logs.stdout).filter((n) => /^\d+$/.test(n));
  expect(pids.length).toBeGreaterThan(0);
  const serverSide = [serverPid, ...childProcesses(serverPid).map((p) => p.pid)].map(String);
  expect(pids.filter((p) => serverSide.includes(p)), `server pids visible to the job (server ${serverPid})`).toEqual([]);
}

/**
 * Attack 2: a job of `attackerToken`'s tries DATA_DIR — the generated JWT
 * secret, the SQLite database and its WAL, the list of run directories and
 * a file in another user's (`adminToken`'s) run directory. The server must
 * have generated its secret into `dataDir` (no JWT_SECRET in its environment).
 */
export async function attackDataDir(server: Api, attackerToken: string, adminToken: string, dataDir: string): Promise<void> {
  const secret = readFileSync(join(dataDir, 'jwt-secret'), 'utf8').trim();
  expect(secret.length).toBeGreaterThanOrEqual(32);
  // Someone else's job, whose run directory exists.
  const other = await runJob(server, adminToken, { name: 'other', command: ['sh', '-c', 'echo private > notes'] });
  expect(existsSync(join(dataDir, 'runs', other.job.id))).toBe(true);

  const { job, logs } = await runJob(server, attackerToken, {
    name: 'data-dir',
    command: ['sh', '-c', [
      'cat "$D/jwt-secret"; echo "secret-rc=$?"',
      'head -c 16 "$D/jobrunner.db"; r=$?; echo; echo "db-rc=$r"',
      'head -c 16 "$D/jobrunner.db-wal" >/dev/null; echo "wal-rc=$?"',
      'ls -a "$D/runs"; echo "runs-rc=$?"',
      `cat "$D/runs/${other.job.id}/notes"; echo "notes-rc=$?"`,
    ].join('\n')],
    env: { D: dataDir },
  });
  const out = logs.stdout + logs.stderr;
  expect(out).not.toContain(secret);
  expect(logs.stdout).not.toMatch(/secret-rc=0\b/);
  expect(out).not.toContain('SQLite format 3');
  expect(logs.stdout).not.toMatch(/db-rc=0\b/);
  expect(logs.stdout).not.toMatch(/wal-rc=0\b/);
  // (stdout: `ls` lists there; stderr names the path the attack tried)
  expect(logs.stdout).not.toContain(other.job.id);
  expect(logs.stdout).not.toContain('private');
  expect(job.status, `error ${job.error}; ${logs.stderr}`).toBe('success');
}

/** What attackOtherUsersJob saw, for the suite's own assertions on uids. */
export interface OtherUsersJobAttack {
  /** The victim's job (canceled by now); the first line of its stdout is its `id -u`. */
  victimId: string;
  /** The victim's uid as the host sees it (/proc/<pid>/status, read while it ran). */
  victimHostUid: string;
  /** The attacker's job; the first line of its stdout is its `id -u`. */
  attacker: { job: JobRead; logs: JobLogs };
}

/**
 * Attack 3: while A's job runs (`sleep <m>`, with a key in its
 * environment), B's job looks for it by command line in its /proc and by
 * its host pid, and tries to read its environment and to kill it. A's job
 * must still be running, its process alive, and B's job must have read
 * and killed nothing. Both jobs print their `id -u` first. `m` is a fresh
 * marker the suite kills on the host after it (on vulnerable code the
 * victim may outlive the cancel).
 */
export async function attackOtherUsersJob(server: Api, victimToken: string, attackerToken: string, m: string): Promise<OtherUsersJobAttack> {
  const key = `A_KEY-${randomBytes(12).toString('hex')}`;
  const held = await submit(server, victimToken, { name: 'victim', command: ['sh', '-c', 'id -u; exec sleep "$M"'], env: { M: m, A_KEY: key } });
  await startedRunning(server, victimToken, held.id);
  const [hostPid] = await waitFor(() => {
    const pids = hostPidsWithMarker(`sleep ${m}`);
    return pids.length === 1 && pids;
  }, 10_000);
  // A's uid as the host sees it (its logs can be read once it has ended).
  const victimHostUid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${hostPid}/status`, 'utf8'))![1]!;

  let attacker: { job: JobRead; logs: JobLogs };
  try {
    attacker = await runJob(server, attackerToken, {
      name: 'attacker',
      command: ['sh', '-c', [
        'id -u',
        // Find the victim by its command line, as an attacker would.
        'for d in /proc/[0-9]*; do',
        '  c=$(tr "\\0" " " < "$d/cmdline" 2>/dev/null)',
        '  case "$c" in "$M"*) p=${d#/proc/}; echo "found $p"; cat "$d/environ" && echo "read $p"; kill -9 "$p" && echo "killed $p";; esac',
        'done',
        // And by the host pid, should the attacker learn it.
        'cat "/proc/$HP/environ" && echo "read host $HP"',
        'kill -9 "$HP" && echo "killed host $HP"',
        'true',
      ].join('\n')],
      env: { M: `sleep ${m}`, HP: String(hostPid) },
    });
    // A's job is still running, its process alive.
    await new Promise((r) => setTimeout(r, 300));
    expect((await getJob(server, victimToken, held.id)).status).toBe('running');
    expect(hostPidsWithMarker(`sleep ${m}`)).toEqual([hostPid]);
  } finally {
    // Not asserted: on vulnerable code the victim is dead already.
    await server.request('POST', `/jobs/${held.id}/cancel`, { token: victimToken });
    await waitTerminal(server, victimToken, held.id);
  }
  const { job, logs } = attacker;
  expect(job.status, `error ${job.error}; ${logs.stderr}`).toBe('success');
  expect(logs.stdout + logs.stderr).not.toContain(key);
  expect(logs.stdout).not.toMatch(/^(killed|read) /m);
  return { victimId: held.id, victimHostUid, attacker };
}
