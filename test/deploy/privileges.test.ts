// The capability set the job-running units keep is enough for full
// isolation: the real server, started as root with its bounding set cut to
// the worker unit's CapabilityBoundingSet (as systemd would), reports
// `full`, runs a job as a uid of its own in a memory-limited cgroup, and
// removes that uid's files on purge.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT, serverStarted, waitTerminal, type SpawnedServer } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from '../helpers/server.js';

// linux/capability.h
const CAP_NUMBERS: Record<string, number> = { CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7, CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21 };
const unit = readFileSync(join(REPO_ROOT, 'deploy/systemd/jobrunner-worker.service'), 'utf8');
const caps = /^CapabilityBoundingSet=(.*)$/m.exec(unit)![1]!.trim().split(/\s+/);
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const root = process.getuid?.() === 0;
const why = !root ? 'the tests do not run as root' : !setpriv ? 'setpriv (util-linux) is not installed' : '';

describe.skipIf(why !== '')(`the units' capability set${why ? ` (skipped: ${why})` : ''}`, () => {
  let server: SpawnedServer;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'jobrunner-caps-'));
    mkdirSync(join(dataDir, 'workspace'));
    const port = await freePort();
    const bounding = `-all,${caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',')}`;
    const child = spawn(setpriv!, [`--bounding-set=${bounding}`, '--inh-caps=-all', process.execPath, '--import', 'tsx', 'src/main.ts', 'serve'], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: '/root',
        DATA_DIR: dataDir,
        PORT: String(port),
        JWT_SECRET: 'test-secret-that-is-long-enough-0123456789',
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server = await serverStarted(child, `http://127.0.0.1:${port}/api/v1`, 45_000);
  }, 60_000);

  afterAll(async () => {
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('gives full isolation: own uid, limits in a cgroup, purge removes the uid\'s files', async () => {
    // The server really runs with only these (setpriv execs node in place).
    const bounding = BigInt(`0x${/^CapBnd:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))![1]}`);
    expect(bounding).toBe(caps.reduce((mask, c) => mask | (1n << BigInt(CAP_NUMBERS[c]!)), 0n));
    const token = await server.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    const isolation = await server.request('GET', '/admin/isolation', { token });
    expect(isolation.status).toBe(200);
    expect(isolation.body.level).toBe('full');
    expect(isolation.body.missing).toEqual([]);

    const submitted = await server.request('POST', '/jobs', { token, body: { name: 'caps', command: ['sh', '-c', 'id -u; echo kept > file'], limits: { memory_mb: 64 } } });
    expect(submitted.status).toBe(202);
    const job = await waitTerminal(server, token, submitted.body.id);
    expect(job.status).toBe('success');
    const logs = await server.request('GET', `/jobs/${job.id}/logs`, { token });
    expect(Number(logs.body.stdout.trim())).toBeGreaterThanOrEqual(1_000_000_000);
    const runDir = join(dataDir, 'runs', job.id);
    expect(readFileSync(join(runDir, 'file'), 'utf8')).toBe('kept\n');

    expect((await server.request('DELETE', `/jobs/${job.id}/purge`, { token })).status).toBe(204);
    expect(existsSync(runDir)).toBe(false);
  });
});
