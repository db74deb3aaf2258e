// The executable's help, completion scripts and what it loads: no server
// needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/jobs.js';
import { COMMANDS, GROUPS } from '../../src/cli/spec.js';
import { CLI_ARGS, cli } from './cli.js';

describe('help', () => {
  it('the README "Command line" section holds the exact `jobrunner --help` output', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const block = /<!-- jobrunner --help -->\n```text\n([\s\S]*?)```\n<!-- \/jobrunner --help -->/.exec(readme);
    expect(block, 'README.md has the help between <!-- jobrunner --help --> markers').not.toBeNull();
    expect(block![1]).toBe(r.stdout);
  });

  it('every command and group has its own --help, exit 0', async () => {
    for (const c of COMMANDS) {
      const r = await cli([...c.name.split(' '), '--help']);
      expect([c.name, r.code, r.stderr]).toEqual([c.name, 0, '']);
      expect(r.stdout).toContain(`usage: jobrunner ${c.name}`);
      for (const option of Object.keys(c.options)) expect(r.stdout).toContain(`--${option}`);
    }
    for (const g of Object.keys(GROUPS)) {
      const r = await cli([g, '-h']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`usage: jobrunner ${g} <`);
    }
    const viaHelp = await cli(['help', 'submit']);
    expect(viaHelp.stdout).toContain('usage: jobrunner submit [options] [--] CMD [ARGS...]');
  });

  it('usage errors name the command whose help to read, exit 2', async () => {
    const cases: [string[], string][] = [
      [['ls', '--bogus'], 'error: unknown option "--bogus" for `ls`\nrun `jobrunner ls --help` for its options\n'],
      [['show'], 'error: `show` needs ID\nrun `jobrunner show --help` for its options\n'],
      [['show', 'a', 'b'], 'error: unexpected argument "b" for `show`\nrun `jobrunner show --help` for its options\n'],
      [['ls', '--limit'], 'error: option "--limit <value>" needs a value for `ls`\nrun `jobrunner ls --help` for its options\n'],
      [['ls', '--limit', 'ten'], 'error: --limit takes a whole number, not "ten"\nrun `jobrunner ls --help` for its options\n'],
      [['completion', 'fish'], 'error: no completion for "fish": bash or zsh\nrun `jobrunner completion --help` for its options\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = await cli(args, { env: { JOBRUNNER_CONFIG: '/nonexistent/c.json' } });
      expect([args, r.code, r.stderr, r.stdout]).toEqual([args, 2, stderr, '']);
    }
  });

  it('--help and client commands load no server module (only src/cli, version, main)', async () => {
    const hooks = pathToFileURL(join(REPO_ROOT, 'test/cli/traceImports.mjs')).href;
    const register = `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(hooks)})`;
    for (const args of [['--help'], ['ls', '--server', 'http://127.0.0.1:1']]) {
      const { stderr } = spawnSync(process.execPath, ['--import', register, ...CLI_ARGS, ...args], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
      const loaded = [...stderr.matchAll(/^loaded (file:\S+)$/gm)].map((m) => m[1]!.replace(pathToFileURL(REPO_ROOT).href + '/', ''));
      expect(loaded.length).toBeGreaterThan(2);
      const ours = loaded.filter((u) => !u.startsWith('node_modules/'));
      expect(ours.filter((u) => !/^(dist|src)\/(main|version)\.(js|ts)$|^(dist|src)\/cli\//.test(u))).toEqual([]);
    }
  });
});

describe('completion', () => {
  it('bash: completes commands, subcommands and a command\'s options', async () => {
    const script = (await cli(['completion', 'bash'])).stdout;
    const complete = (words: string[]) =>
      execFileSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _jobrunner; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' })
        .trim()
        .split('\n');
    expect(complete(['jobrunner', 'ba'])).toEqual(['batch']);
    expect(complete(['jobrunner', 'batch', ''])).toEqual(['submit', 'ls', 'show', 'cancel', '--help']);
    expect(complete(['jobrunner', 'submit', '--f'])).toEqual(['--follow']);
    expect(complete(['jobrunner', 'limits', 'set', '--'])).toEqual(['--user', '--json', '--server', '--help']);
    expect(complete(['jobrunner', 'completion', ''])).toEqual(['bash', 'zsh']);
    expect(complete(['jobrunner', 'completion', '--'])).toEqual(['--help']);
    expect(complete(['jobrunner', 'help', 'li'])).toEqual(['limits']);
  });

  // Run by zsh itself, with the completion system's builtins (_describe, compadd, _files) replaced by functions that print what they are given.
  const zsh = ['/usr/bin/zsh', '/bin/zsh'].find((p) => existsSync(p));
  it.skipIf(!zsh)(`zsh: completes commands, subcommands, options and the words of completion and help${zsh ? '' : ' (skipped: zsh is not installed here)'}`, async () => {
    const r = await cli(['completion', 'zsh']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^#compdef jobrunner\n/);
    const stubs = [
      'compdef() { :; }',
      '_describe() { local e; for e in "${(@P)2}"; do print -r -- "${e%%:*}"; done }',
      'compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@" }',
      '_files() { print -r -- "<files>" }',
    ].join('\n');
    const complete = (words: string[]) => {
      const current = words.at(-1)!;
      const line = `words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; PREFIX='${current}'; _jobrunner`;
      // The stubs print every candidate; zsh itself would keep those starting with PREFIX.
      return execFileSync(zsh!, ['-f', '-c', `${stubs}\n${r.stdout}\n${line}`], { encoding: 'utf8' }).trim().split('\n').filter((w) => w.startsWith(current));
    };
    expect(execFileSync(zsh!, ['-f', '-c', `${stubs}\ncompdef() { print -r -- "compdef $*" }\n${r.stdout}`], { encoding: 'utf8' })).toBe('compdef _jobrunner jobrunner\n');
    expect(complete(['jobrunner', '']).sort()).toEqual([...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!)), 'help'].sort());
    expect(complete(['jobrunner', 'ba'])).toEqual(['batch']);
    expect(complete(['jobrunner', 'batch', ''])).toEqual(['submit', 'ls', 'show', 'cancel']);
    expect(complete(['jobrunner', 'submit', '--f'])).toEqual(['--follow']);
    expect(complete(['jobrunner', 'limits', 'set', '--'])).toEqual(['--user', '--json', '--server', '--help']);
    expect(complete(['jobrunner', 'completion', ''])).toEqual(['bash', 'zsh']);
    expect(complete(['jobrunner', 'help', 'li'])).toEqual(['limits']);
    expect(complete(['jobrunner', 'batch', 'submit', ''])).toEqual(['<files>']);
  });
});
