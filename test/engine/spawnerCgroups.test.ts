// The cgroups of isolated jobs whose spawner helper was killed (kill -9):
// the jobs end killed, and the next helper, told by the worker which cgroups
// the dead one had made, removes them once empty, in every hierarchy
// (cgroup v2 and, on a hybrid host, the v1 memory, pids and cpuacct ones).
// Native helper, isolated; full isolation needs root, as CI has.
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { LaunchOptions } from '../../src/engine/launcher.js';
import { startSpawner, type Spawner } from '../../src/engine/spawnerClient.js';
import { cgroup2Mount } from '../helpers/cgroups.js';
import { childProcesses } from '../helpers/jobs.js';
import { hostPidsWithMarker, killMarked, marker } from '../helpers/isolation.js';
import { waitFor } from '../helpers/server.js';

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
