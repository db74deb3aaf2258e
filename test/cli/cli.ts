// Runs the `jobrunner` executable as a user does: the build (dist/main.js)
// when it is at least as new as the sources it comes from, else the sources
// through tsx (a stale build would test old code). Each run is a real child
// process with a clean environment and its own config file.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/jobs.js';

function newest(dir: string, ext: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, ext));
    else if (e.name.endsWith(ext)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

function oldest(dir: string, ext: string): number {
  let t = Infinity;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.min(t, oldest(p, ext));
    else if (e.name.endsWith(ext)) t = Math.min(t, statSync(p).mtimeMs);
  }
  return t;
}

function builtIsFresh(): boolean {
  try {
    const src = Math.max(newest(join(REPO_ROOT, 'src/cli'), '.ts'), statSync(join(REPO_ROOT, 'src/main.ts')).mtimeMs);
    const built = Math.min(oldest(join(REPO_ROOT, 'dist/cli'), '.js'), statSync(join(REPO_ROOT, 'dist/main.js')).mtimeMs);
    return built >= src;
  } catch {
    return false;
  }
}

export const CLI_ARGS = builtIsFresh() ? [join(REPO_ROOT, 'dist/main.js')] : ['--import', 'tsx', join(REPO_ROOT, 'src/main.ts')];

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  /** Resolves when the process has exited. */
  done: Promise<CliResult>;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  kill(signal?: NodeJS.Signals): void;
}

/** A fresh config file path (in a directory of its own, removed by `cleanup`). */
export function configDir(): { path: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'jobrunner-cli-'));
  return { path: join(dir, 'jobrunner', 'config.json'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function start(args: string[], opts: { env?: Record<string, string>; input?: string; cwd?: string } = {}): CliRun {
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.on('error', () => {}); // a CLI that does not read stdin may exit before we finish writing
  child.stdin.end(opts.input ?? '');
  const done = new Promise<CliResult>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { done, stdout: () => stdout, stderr: () => stderr, kill: (s = 'SIGTERM') => child.kill(s) };
}

/** Runs the CLI to its end. */
export const cli = (args: string[], opts?: Parameters<typeof start>[1]) => start(args, opts).done;
