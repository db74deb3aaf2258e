// The cgroups of isolated jobs whose spawner helper or whole worker was
// killed (kill -9). A dead helper's jobs end killed, and the next helper, told
// by the worker which cgroups the dead one had made, removes them once empty,
// in every hierarchy (cgroup v2 and, on a hybrid host, the v1 memory, pids
// and cpuacct ones). A dead worker's are swept by a worker starting on the
// host. Native helper, isolated; full isolation needs root, as CI has.
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildApp } from '../../src/server.js';
import type { LaunchOptions } from '../../src/engine/launcher.js';
import { startSpawner, type Spawner } from '../../src/engine/spawnerClient.js';
import { cgroup2Mount, jobCgroups } from '../helpers/cgroups.js';
import { childProcesses, getJob, submit, waitTerminal } from '../helpers/jobs.js';
import { hostPidsWithMarker, killMarked, marker } from '../helpers/isolation.js';
import { startServer, testServerEnv, waitFor, type TestServer } from '../helpers/server.js';

/** Every cgroup hierarchy on this host that holds our directory of job cgroups. */
function jobCgroupRoots(): string[] {
  const v1 = existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup').map((d) => join('/sys/fs/cgroup', d)) : [];
  return [...new Set([cgroup2Mount(), ...v1].filter((h): h is string => !!h && existsSync(join(h, 'jobrunner'))))];
}
const cgroupDirs = (name: string) => jobCgroupRoots().map((root) => join(root, 'jobrunner', name)).filter((d) => existsSync(d));

describe('cgroups of a helper killed with kill -9', () => {
  let spawner: Spawner;
  const marks = new Set<string>();
  beforeAll(async () => {
    spawner = await startSpawner(createLogger('error'), 'native', { isolation: { hide: [], network: 'host', group: null } });
    expect(spawner.isolation.level).toBe('full');
  });
  afterAll(async () => {
    killMarked(marks);
    await spawner?.close();
  });

  it('are removed by the next helper once its jobs are dead, in every hierarchy', async () => {
    const options = (cgroup: string): LaunchOptions => ({
      cwd: '/',
      env: { PATH: '/usr/bin:/bin' },
      isolation: { root: '/', cgroup, uid: 65534, gid: 65534, limits: { memoryMb: 256, pids: 64, cpuSeconds: null, openFiles: null, fileSizeMb: null } },
    });
    const names = [0, 1].map(() => `cgroups-test-${randomBytes(6).toString('hex')}`);
    const jobs = names.map((name) => {
      const m = marker(String(300 + Math.floor(Math.random() * 600)));
      marks.add(m);
      const p = spawner.launcher('sh', ['-c', `sleep ${m} & sleep ${m}`], options(name));
      return { name, m, p, started: once(p, 'spawn'), exit: once(p, 'exit') };
    });
    for (const j of jobs) await j.started;
    for (const j of jobs) await waitFor(() => hostPidsWithMarker(j.m).length >= 2, 5000);
    // With a memory and a pids limit, a hybrid host's v1 memory and pids hierarchies hold the job too.
    for (const j of jobs) expect(cgroupDirs(j.name).length).toBeGreaterThanOrEqual(existsSync('/sys/fs/cgroup/memory/jobrunner') ? 3 : 1);

    const helper = childProcesses().find((p) => /jobrunner-spawner/.test(p.cmdline))?.pid;
    expect(helper).toBeDefined();
    process.kill(helper!, 'SIGKILL');
    for (const j of jobs) expect(await j.exit).toEqual([null, 'SIGKILL']);
    for (const j of jobs) await waitFor(() => hostPidsWithMarker(j.m).length === 0, 5000);

    // The next helper starts at once and is told to remove them.
    await waitFor(() => names.every((n) => cgroupDirs(n).length === 0), 5000);
  });
});

// A worker that died outright (kill -9) leaves its jobs' cgroups behind,
// empty: its helper died with it. A worker starting on the host removes the
// cgroups of its database's jobs that are not running with that attempt, and
// keeps the others (another deployment's jobs share the directory).
// The leftovers are made here as such a worker leaves them.
describe('cgroups left by a worker that died', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('postgresql');
  });
  afterAll(async () => {
    await s?.stop();
  });

  it("are removed by a worker starting on the host when their job is this database's and not running with that attempt", async () => {
    const roots = jobCgroupRoots();
    expect(roots.length).toBeGreaterThan(0);
    const prisma = s.app.db.prisma;
    const running = await submit(s, s.adminToken, { name: 'still-running', command: ['true'] });
    const ended = await submit(s, s.adminToken, { name: 'ended', command: ['true'] });
    await waitTerminal(s, s.adminToken, running.id);
    await waitTerminal(s, s.adminToken, ended.id);
    // The row of a job another worker runs now, attempt 7 (its worker is alive: a lease far off).
    await prisma.worker.create({ data: { id: 'other-host:1:0123456789ab', hostname: 'other-host', pid: 1, heartbeatAt: new Date(), leaseExpiresAt: new Date(Date.now() + 3_600_000) } });
    await prisma.job.update({ where: { id: running.id }, data: { status: 'running', attempt: 7, workerId: 'other-host:1:0123456789ab', finishedAt: null } });
    const names = {
      kept: `${running.id}-7-1a2b`,
      olderAttempt: `${running.id}-6-1a2b`,
      endedJob: `${ended.id}-1-1a2b`,
      // A job this database does not hold: another deployment's on this host, running for all we know.
      otherDeployment: `${randomUUID()}-1-1a2b`,
      notOurs: `cgroups-test-${randomBytes(6).toString('hex')}`,
    };
    for (const name of Object.values(names)) for (const root of roots) mkdirSync(join(root, 'jobrunner', name));
    try {
      // Another worker on this host (same DATA_DIR, same database), as after a restart.
      const worker = await buildApp(loadConfig(testServerEnv(s.db)), { http: false, log: createLogger('error') });
      await worker.start();
      try {
        await waitFor(() => [names.olderAttempt, names.endedJob].every((n) => cgroupDirs(n).length === 0), 10_000);
      } finally {
        await worker.stop(0);
      }
      for (const n of [names.kept, names.otherDeployment, names.notOurs]) expect(cgroupDirs(n), n).toHaveLength(roots.length);
    } finally {
      for (const name of Object.values(names)) for (const dir of cgroupDirs(name)) rmdirSync(dir);
    }
  });
});

describe('two deployments on one host', () => {
  it("a worker starting never touches the other deployment's running job or its cgroup", async () => {
    const a = await startServer('sqlite');
    try {
      const job = await submit(a, a.adminToken, { name: 'theirs', command: ['sleep', '300'] });
      await waitFor(async () => (await getJob(a, a.adminToken, job.id)).status === 'running' && jobCgroups(job.id).length > 0);
      const b = await startServer('sqlite');
      try {
        // B's start-up sweep has run by now; give its helper time to act on anything it was told.
        await new Promise((r) => setTimeout(r, 1000));
        expect((await getJob(a, a.adminToken, job.id)).status).toBe('running');
        expect(jobCgroups(job.id).length).toBeGreaterThan(0);
      } finally {
        await b.stop();
      }
    } finally {
      await a.stop();
    }
  });
});
