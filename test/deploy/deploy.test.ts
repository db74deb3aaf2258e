// The deployment files against the code they deploy: every command line is
// a real subcommand whose options its own --help lists (asked of the CLI at
// test time), stop timeouts exceed the shutdown grace the same files
// configure, every environment name is a setting of src/config.ts, values
// pass the config's own validation, the privileges are the ones isolation
// needs (workers) or none (APIs), and the files pass `systemd-analyze
// verify` and `docker compose config` where those tools are installed.
// Not run here: building the image and starting the containers (no Docker
// daemon, and no image can be pulled on this network).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, RESOURCE_LIMITS } from '../../src/config.js';
import { REPO_ROOT } from '../helpers/jobs.js';
import { parseYamlSubset, type Yaml } from './yamlSubset.js';

const DEPLOY = join(REPO_ROOT, 'deploy');
const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');

/** Every environment variable src/config.ts reads (the only reader of process.env). */
function configNames(): Set<string> {
  const source = read('src/config.ts');
  const names = new Set<string>();
  for (const re of [/\benv\.([A-Z][A-Z0-9_]*)/g, /\(env, '([A-Z][A-Z0-9_]*)'/g]) for (const m of source.matchAll(re)) names.add(m[1]!);
  for (const spec of Object.values(RESOURCE_LIMITS)) names.add(spec.env).add(`${spec.env}_MAX`);
  return names;
}
const CONFIG_NAMES = configNames();

const helpCache = new Map<string, { status: number | null; out: string }>();
/** The CLI as it is now (another session may be changing it): `jobrunner <args>`. */
function cli(args: string[]): { status: number | null; out: string } {
  const key = args.join('\0');
  if (!helpCache.has(key)) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/' }, timeout: 60_000 });
    helpCache.set(key, { status: r.status, out: `${r.stdout}${r.stderr}` });
  }
  return helpCache.get(key)!;
}

/** `<command> [--options]`: the command has a --help, lists each option, and accepts them together. */
function expectRealCommand(args: string[], where: string) {
  const [command, ...options] = args;
  expect(command, where).toMatch(/^[a-z][a-z-]*$/);
  const help = cli([command!, '--help']);
  expect(help.status, `${where}: jobrunner ${command} --help\n${help.out}`).toBe(0);
  expect(help.out, where).toContain(`usage: jobrunner ${command}`);
  for (const o of options) {
    expect(o, where).toMatch(/^--[a-z][a-z-]*$/);
    expect(help.out, `${where}: ${o} is not among the options of \`jobrunner ${command}\``).toMatch(new RegExp(`^\\s+${o}\\b`, 'm'));
  }
  const together = cli([...args, '--help']);
  expect(together.status, `${where}: jobrunner ${args.join(' ')} --help\n${together.out}`).toBe(0);
}

/** KEY=VALUE lines (comments and blank lines skipped). */
function envFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(t);
    if (!m) throw new Error(`not KEY=VALUE: ${t}`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** The stop budget a unit or container needs: the shutdown grace, then the kill grace for what is left. */
function stopBudgetSeconds(env: Record<string, string>): number {
  const config = loadConfig(env);
  return (config.shutdownGraceMs + config.killGraceMs) / 1000;
}

const WORKER_CAPS = ['CAP_SYS_ADMIN', 'CAP_SETUID', 'CAP_SETGID', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_KILL', 'CAP_NET_ADMIN'];

interface Unit {
  file: string;
  service: Record<string, string[]>;
}

function parseUnit(file: string): Unit {
  const service: Record<string, string[]> = {};
  let section = '';
  for (const line of read(`deploy/systemd/${file}`).split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const s = /^\[(\w+)\]$/.exec(t);
    if (s) {
      section = s[1]!;
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(t);
    if (!kv) throw new Error(`${file}: not Key=Value: ${t}`);
    if (section === 'Service') (service[kv[1]!] ??= []).push(kv[2]!);
  }
  return { file, service };
}
const one = (u: Unit, key: string) => {
  expect(u.service[key], `${u.file}: ${key}`).toHaveLength(1);
  return u.service[key]![0]!;
};

const UNITS = readdirSync(join(DEPLOY, 'systemd')).filter((f) => f.endsWith('.service')).sort();
const UNIT_ENV = envFile(read('deploy/systemd/jobrunner.env.example'));

describe('systemd units', () => {
  it('are the single-process unit and the API/worker split', () => {
    expect(UNITS).toEqual(['jobrunner-api.service', 'jobrunner-worker.service', 'jobrunner.service']);
  });

  it('the environment file holds only settings of src/config.ts, with values the config accepts', () => {
    for (const name of Object.keys(UNIT_ENV)) expect(CONFIG_NAMES, `${name} is not read by src/config.ts`).toContain(name);
    expect(() => loadConfig(UNIT_ENV)).not.toThrow();
  });

  for (const file of UNITS) {
    it(`${file}: ExecStart is a real command, the stop timeout exceeds the grace, KillMode=mixed, known environment names`, () => {
      const unit = parseUnit(file);
      const exec = one(unit, 'ExecStart').split(/\s+/);
      expect(exec.slice(0, 2)).toEqual(['/usr/bin/node', '/opt/jobrunner/dist/main.js']);
      expectRealCommand(exec.slice(2), file);

      const extra = Object.fromEntries((unit.service.Environment ?? []).map((e) => e.split(/=(.*)/s).slice(0, 2) as [string, string]));
      for (const name of Object.keys(extra)) expect(CONFIG_NAMES, `${file}: ${name}`).toContain(name);
      const env = { ...UNIT_ENV, ...extra };
      const timeout = /^(\d+)s?$/.exec(one(unit, 'TimeoutStopSec'));
      expect(timeout, 'TimeoutStopSec in seconds').not.toBeNull();
      expect(Number(timeout![1])).toBeGreaterThan(stopBudgetSeconds(env));
      expect(one(unit, 'KillMode')).toBe('mixed');
      expect(one(unit, 'EnvironmentFile')).toBe('/etc/jobrunner/jobrunner.env');
    });
  }

  it('runs job-running units as root with exactly the capabilities isolation needs, and the API unprivileged with none', () => {
    for (const file of ['jobrunner.service', 'jobrunner-worker.service']) {
      const unit = parseUnit(file);
      expect(one(unit, 'User')).toBe('root');
      expect(one(unit, 'CapabilityBoundingSet').split(/\s+/).sort()).toEqual([...WORKER_CAPS].sort());
      expect(one(unit, 'Delegate')).toBe('yes');
    }
    const api = parseUnit('jobrunner-api.service');
    expect(one(api, 'User')).not.toBe('root');
    expect(one(api, 'CapabilityBoundingSet')).toBe('');
    expect(one(api, 'AmbientCapabilities')).toBe('');
    expect(one(api, 'NoNewPrivileges')).toBe('yes');
    expect(one(api, 'ExecStart')).toMatch(/ serve --no-worker$/);
    // The worker has no API port: its metrics and health need their own listener.
    const worker = parseUnit('jobrunner-worker.service');
    expect(worker.service.Environment).toContain('METRICS_PORT=9464');
  });

  const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
  it.skipIf(!analyze)(`pass systemd-analyze verify${analyze ? '' : ' (skipped: systemd-analyze is not installed here)'}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobrunner-units-'));
    try {
      for (const file of UNITS) {
        // verify checks that ExecStart's program exists: where node lives elsewhere, point at this one.
        const text = read(`deploy/systemd/${file}`);
        writeFileSync(join(dir, file), existsSync('/usr/bin/node') ? text : text.replaceAll('/usr/bin/node', process.execPath));
      }
      const r = spawnSync(analyze!, ['verify', '--man=no', ...UNITS.map((f) => join(dir, f))], { encoding: 'utf8', timeout: 60_000 });
      expect(`${r.stdout}${r.stderr}`).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const COMPOSE_TEXT = read('deploy/compose.yaml');
const COMPOSE_ENV = envFile(read('deploy/compose.env.example'));

/** Compose interpolation with the example values: ${NAME}, ${NAME:?message}, and $$ for a literal $. */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::\?[^}]*)?\}/g, (whole, name?: string) => {
    if (whole === '$$') return '$';
    if (!(name! in COMPOSE_ENV)) throw new Error(`${name} is used by compose.yaml but not set in compose.env.example`);
    return COMPOSE_ENV[name!]!;
  });
}

type Service = Record<string, Yaml>;

describe('compose file', () => {
  const compose = parseYamlSubset(COMPOSE_TEXT) as { services: Record<string, Service> };
  const services = compose.services;
  const jobrunner = Object.entries(services).filter(([, s]) => s.image === 'jobrunner');
  const commandOf = (s: Service) => s.command as string[];
  const envOf = (s: Service) => Object.fromEntries(Object.entries(s.environment as Record<string, string>).map(([k, v]) => [k, interpolate(v)]));

  it('runs 2 API processes and 2 workers on PostgreSQL and Redis', () => {
    expect(jobrunner.filter(([, s]) => commandOf(s).join(' ') === 'serve --no-worker')).toHaveLength(2);
    expect(jobrunner.filter(([, s]) => commandOf(s).join(' ') === 'worker')).toHaveLength(2);
    expect(jobrunner).toHaveLength(4);
    for (const [, s] of jobrunner) {
      expect(envOf(s).DATABASE_URL).toMatch(/^postgresql:\/\/jobrunner:[^@]+@postgres:5432\/jobrunner$/);
      expect(envOf(s).REDIS_URL).toMatch(/^redis:\/\/:[^@]+@redis:6379\/0$/);
    }
  });

  it('asks for every credential (no default), and the databases require them', () => {
    for (const name of ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'JWT_SECRET', 'ADMIN_PASSWORD', 'METRICS_TOKEN']) {
      expect(COMPOSE_TEXT).toContain(`\${${name}:?`);
      expect(COMPOSE_TEXT).not.toMatch(new RegExp(`\\$\\{${name}(:-|-)`));
    }
    expect((services.postgres!.environment as Record<string, string>).POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?/);
    expect((services.redis!.command as string[]).slice(0, 3)).toEqual(['redis-server', '--requirepass', '${REDIS_PASSWORD:?set REDIS_PASSWORD in deploy/compose.env}']);
  });

  for (const [name, s] of jobrunner) {
    it(`${name}: a real command, known environment names the config accepts, stop_grace_period above the grace`, () => {
      expectRealCommand(commandOf(s), name);
      const env = envOf(s);
      for (const key of Object.keys(env)) expect(CONFIG_NAMES, `${name}: ${key}`).toContain(key);
      expect(() => loadConfig(env)).not.toThrow();
      const grace = /^(\d+)s$/.exec(s.stop_grace_period as string);
      expect(grace, 'stop_grace_period in seconds').not.toBeNull();
      expect(Number(grace![1])).toBeGreaterThan(stopBudgetSeconds(env));
    });
  }

  it('keeps the APIs unprivileged and gives the workers what isolation needs', () => {
    for (const [name, s] of jobrunner) {
      if (commandOf(s)[0] === 'worker') {
        expect(s.user, name).toBe('root');
        expect(s.privileged, name).toBe('true');
        expect(envOf(s).METRICS_PORT, name).toBe('9464');
      } else {
        expect(s.user, name).toBe('node');
        expect(s.cap_drop, name).toEqual(['ALL']);
        expect(s.privileged, name).toBeUndefined();
        expect(s.security_opt, name).toEqual(['no-new-privileges:true']);
      }
    }
  });

  const tool = ['docker compose', 'docker-compose'].find((t) => spawnSync(t.split(' ')[0]!, [...t.split(' ').slice(1), 'version'], { encoding: 'utf8' }).status === 0);
  it.skipIf(!tool)(`passes docker compose config${tool ? ` (${tool})` : ' (skipped: neither `docker compose` nor docker-compose is installed here)'}`, () => {
    const [bin, ...pre] = tool!.split(' ');
    const r = spawnSync(bin!, [...pre, '--env-file', join(DEPLOY, 'compose.env.example'), '-f', join(DEPLOY, 'compose.yaml'), 'config', '--quiet'], { encoding: 'utf8', timeout: 60_000 });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
    // Without the env file, a missing credential stops it with the message.
    const bare = spawnSync(bin!, [...pre, '-f', join(DEPLOY, 'compose.yaml'), 'config', '--quiet'], { encoding: 'utf8', timeout: 60_000, cwd: tmpdir() });
    expect(bare.status).not.toBe(0);
    expect(bare.stderr).toMatch(/set [A-Z_]+ in deploy\/compose\.env/);
  });
});

describe('Dockerfile', () => {
  const text = read('deploy/Dockerfile');
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), arg: rest.join(' ') };
    });

  it('is multi-stage on node:20, builds the native helper inside, then prunes dev dependencies', () => {
    const froms = instructions.filter((i) => i.op === 'FROM').map((i) => i.arg);
    expect(froms).toEqual(['node:20-bookworm AS build', 'node:20-bookworm-slim AS runtime']);
    const run = instructions.filter((i) => i.op === 'RUN').map((i) => i.arg).join('\n');
    const ci = run.indexOf('npm ci');
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(run.indexOf('test -x dist/jobrunner-spawner')).toBeGreaterThan(ci);
    expect(run.indexOf('npm prune --omit=dev')).toBeGreaterThan(ci);
    // The helper is built by the install step the Dockerfile runs (npm ci runs prepare).
    expect(JSON.parse(read('package.json')).scripts.prepare).toContain('build-spawner');
  });

  it('copies what `node dist/main.js` reads at run time, and starts a real command', () => {
    const copies = instructions.filter((i) => i.op === 'COPY' && i.arg.startsWith('--from=build')).map((i) => i.arg.split(/\s+/)[1]!.replace(/^\/app\//, ''));
    expect(copies.sort()).toEqual(['assets', 'dist', 'node_modules', 'package.json', 'prisma/migrations']);
    for (const path of ['assets/playground', 'prisma/migrations/sqlite', 'prisma/migrations/postgresql']) expect(existsSync(join(REPO_ROOT, path)), path).toBe(true);
    const entry = instructions.find((i) => i.op === 'ENTRYPOINT')!.arg;
    expect(JSON.parse(entry)).toEqual(['node', 'dist/main.js']);
    expectRealCommand(JSON.parse(instructions.find((i) => i.op === 'CMD')!.arg) as string[], 'Dockerfile CMD');
    const env = instructions.filter((i) => i.op === 'ENV').flatMap((i) => [...i.arg.matchAll(/([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]!));
    for (const name of env) expect(CONFIG_NAMES, `Dockerfile ENV ${name}`).toContain(name);
    expect(instructions.filter((i) => i.op === 'USER').map((i) => i.arg)).toEqual(['node']);
    // The build context ignores what the build makes itself and local data.
    const ignored = read('deploy/Dockerfile.dockerignore').split('\n');
    for (const entry of ['node_modules', 'dist', 'data', 'src/generated', 'deploy/compose.env']) expect(ignored).toContain(entry);
  });
});

describe('LICENSE', () => {
  it('is the Apache License 2.0, unmodified', () => {
    const text = read('LICENSE');
    expect(text).toContain('Apache License\n                           Version 2.0, January 2004');
    expect(text).toContain('END OF TERMS AND CONDITIONS');
    expect(text.length).toBe(11358);
  });
});
