// Start-up configuration: a wrong environment variable stops `serve` with one
// line naming it; the defaults are the documented ones.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

const ROOT = resolve(import.meta.dirname, '../..');
const dataDir = mkdtempSync(join(tmpdir(), 'jobrunner-config-'));

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node --import tsx src/main.ts serve` with only the given environment (plus PATH/HOME). */
function serve(env: Record<string, string>, timeoutMs = 30_000): Promise<Exit> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
      cwd: ROOT,
      // A valid base (its own data dir, an ephemeral port) so only the variable under test is wrong.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'error', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    // A process that accepted the bad value would keep serving: stop it, and the test fails on the exit code.
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

describe('configuration', () => {
  const bad: [string, string][] = [
    ['PORT', 'abc'],
    ['DATABASE_URL', 'mysql://x'],
    ['JWT_SECRET', 'short'],
    ['LOG_LEVEL', 'loud'],
    ['JOBS_ALLOWED_ROOTS', 'relative/path'],
    ['SPAWNER', 'fork'],
    ['TRUST_PROXY', 'yes'],
    ['JOB_ISOLATION', 'maybe'],
    ['JOB_NETWORK', 'bridge'],
    ['JOB_UID_RANGE', '10-20'],
    ['JOB_MEMORY_MB', '8'],
    ['REDIS_PREFIX', 'two words'],
  ];

  it('serve exits with code 1 and one stderr line naming the variable, for each bad value', async () => {
    const results = await Promise.all(bad.map(([name, value]) => serve({ [name]: value })));
    results.forEach((r, i) => {
      const [name, value] = bad[i]!;
      const label = `${name}=${value}: exit ${r.code} (${r.signal}), stderr ${JSON.stringify(r.stderr)}`;
      expect(r.code, label).toBe(1);
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines, label).toHaveLength(1);
      expect(lines[0], label).toContain(name);
      expect(lines[0], label).not.toMatch(/\n\s+at /);
    });
  });

  it('loadConfig() defaults are the documented ones', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8000);
    expect(config.apiPrefix).toBe('/api/v1');
    expect(config.maxLogBytes).toBe(10 * 1024 * 1024);
    expect(config.maxBodyBytes).toBe(1024 * 1024);
    expect(config.defaultMaxConcurrentJobs).toBe(4);
    expect(config.spawner).toBe('auto');
    expect(config.database.provider).toBe('sqlite');
    expect(config.redisUrl).toBeNull();
    expect(config.adminEmail).toBe('admin@example.com');
    expect(config.adminPassword).toBe('ChangeMe123!');
    expect(config.jobsAllowedRoots).toEqual([join(config.dataDir, 'workspace')]);
    expect(config.workerConcurrency).toBeGreaterThanOrEqual(4);
  });

  it('loadConfig() takes valid values and treats empty ones as unset', () => {
    const config = loadConfig({ PORT: '9001', API_PREFIX: '/api/v2', MAX_BODY_BYTES: '2048', DEFAULT_MAX_CONCURRENT_JOBS: '', DATABASE_URL: 'postgresql://u@db.example:5432/jr' });
    expect(config.port).toBe(9001);
    expect(config.apiPrefix).toBe('/api/v2');
    expect(config.maxBodyBytes).toBe(2048);
    expect(config.defaultMaxConcurrentJobs).toBe(4);
    expect(config.database).toEqual({ provider: 'postgresql', url: 'postgresql://u@db.example:5432/jr' });
  });

  it('REDIS_PREFIX: default jobrunner, with the database index of REDIS_URL when it is not 0; bounded, no spaces or glob characters', () => {
    expect(loadConfig({}).redisPrefix).toBe('jobrunner');
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redisPrefix).toBe('jobrunner');
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/0' }).redisPrefix).toBe('jobrunner');
    // Pub/sub ignores the database index: deployments on /3 and /4 of one Redis need different channel names.
    expect(loadConfig({ REDIS_URL: 'redis://:pw@127.0.0.1:6379/3' }).redisPrefix).toBe('jobrunner:3');
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379?db=4' }).redisPrefix).toBe('jobrunner:4');
    // Set explicitly, it is taken as it is (a trailing ':' is the separator, dropped).
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/3', REDIS_PREFIX: 'team-a' }).redisPrefix).toBe('team-a');
    expect(loadConfig({ REDIS_PREFIX: 'team-a:' }).redisPrefix).toBe('team-a');
    expect(loadConfig({ REDIS_PREFIX: '' }).redisPrefix).toBe('jobrunner');
    for (const bad of ['two words', 'tab\there', 'x'.repeat(65), 'star*', 'q?', '[set]', ':']) {
      expect(() => loadConfig({ REDIS_PREFIX: bad }), bad).toThrow(/REDIS_PREFIX must be 1 to 64 printable characters/);
    }
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/x' })).toThrow(/REDIS_URL must name the database as a number/);
  });
});
