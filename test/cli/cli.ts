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

const shellQuote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

export interface StartOptions {
  env?: Record<string, string>;
  /** Written to stdin, which is then closed; without it stdin stays open (write with `type`). */
  input?: string;
  cwd?: string;
  /** On a pseudo-terminal (util-linux `script`): stdin, stdout and stderr are a TTY, all output arrives on stdout. */
  tty?: boolean;
}

export function start(args: string[], opts: StartOptions = {}): CliRun & { type(text: string): void } {
  const argv = [process.execPath, ...CLI_ARGS, ...args];
  const [file, fileArgs] = opts.tty ? ['script', ['-qefc', argv.map(shellQuote).join(' '), '/dev/null']] : [argv[0]!, argv.slice(1)];
  const child = spawn(file, fileArgs as string[], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.on('error', () => {}); // a CLI that does not read stdin may exit before we finish writing
  if (opts.input !== undefined || !opts.tty) child.stdin.end(opts.input ?? '');
  const done = new Promise<CliResult>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { done, stdout: () => stdout, stderr: () => stderr, kill: (s = 'SIGTERM') => child.kill(s), type: (text) => child.stdin.write(text) };
}

/** Runs the CLI to its end. */
export const cli = (args: string[], opts?: StartOptions) => start(args, opts).done;
