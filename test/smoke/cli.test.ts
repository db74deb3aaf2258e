// The CLI as a user meets it: real child processes from the repo root.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/jobs.js';
import { VERSION } from '../../src/version.js';

function cli(...args: string[]) {
  return cliWith({}, ...args);
}

function cliWith(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('jobrunner command line', () => {
  it.each([['--help'], ['-h'], ['help']])('%s prints the usage with every command and the main environment variables, exit 0', (arg) => {
    const r = cli(arg);
    expect(r.code).toBe(0);
    for (const word of ['serve', '--no-worker', 'worker', 'migrate', 'create-user', '--version', 'DATA_DIR', 'DATABASE_URL', 'REDIS_URL', 'PORT']) {
      expect(r.stdout).toContain(word);
    }
    expect(r.stderr).toBe('');
  });

  it.each([['--version'], ['-v']])('%s prints the version, exit 0', (arg) => {
    const r = cli(arg);
    expect(r).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });

  it.each([
    ['bogus', 'unknown command "bogus"', 'jobrunner --help'],
    ['--bogus', 'unknown option "--bogus"', 'jobrunner --help'],
    ['serve --bogus', 'unknown option "--bogus" for `serve`', 'jobrunner serve --help'],
    ['batch frobnicate', 'unknown subcommand "frobnicate" for `batch`', 'jobrunner batch --help'],
  ])('`%s` prints the usage hint to stderr, exit 2', (args, message, hint) => {
    const r = cli(...args.split(' '));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(hint);
  });

  it('with no command prints the usage to stderr and exits 2 without starting a server', () => {
    // A serve would stop at this configuration error; nothing is configured, nothing fails.
    const r = cliWith({ DATABASE_URL: 'mysql://nope' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('usage: jobrunner <command>');
    expect(r.stderr).toContain('no command given (`npm start` runs `jobrunner serve`)');
    expect(r.stderr).not.toContain('DATABASE_URL must start with');
  });
});
