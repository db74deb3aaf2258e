// Reduced isolation (issue #11): the real server started unprivileged — as
// uid/gid 65534 (nobody), no supplementary groups, JOB_ISOLATION unset — so
// it cannot give jobs uids of their own or cgroups; jobs then run in an
// unprivileged user namespace. The same attacks as in isolation.test.ts
// must still fail: the server's environment, its data directory, another
// user's job and the server's processes stay out of a job's reach, although
// job and server run as the same uid on the host.
//
// The server runs the sources (`node --import tsx src/main.ts serve`) from
// the repository; where uid 65534 cannot read the repository in place, the
// helper bind-mounts it into a private mount namespace (startCliServer).
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attackDataDir, attackOtherUsersJob, attackServerEnviron, attackServerPids, killMarked, marker, startCliServer, type CliServer,
} from '../helpers/isolation.js';
import { ADMIN_EMAIL } from '../helpers/server.js';

const NOBODY = 65534;
// The secret in the server's process environment.
const ADMIN_PASSWORD = `Reduced-${randomBytes(12).toString('hex')}`;

describe('reduced isolation: the server started as uid 65534', () => {
  let base: string;
  let dataDir: string;
  let srv: CliServer;
  let admin: string;
  let a: string;
  let b: string;
  const markers = new Set<string>();

  async function operator(): Promise<string> {
    const email = `op-${randomBytes(4).toString('hex')}@example.com`;
    const password = 'Operator-Pass-123';
    const res = await srv.request('POST', '/users', { token: admin, body: { email, password, role: 'operator' } });
    if (res.status !== 201) throw new Error(`create operator: ${res.status} ${res.text}`);
    return srv.token(email, password);
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'jobrunner-reduced-'));
    dataDir = join(base, 'data');
    mkdirSync(dataDir);
    for (const d of [base, dataDir]) chownSync(d, NOBODY, NOBODY);
    srv = await startCliServer({
      HOST: '127.0.0.1',
      HOME: base,
      DATA_DIR: dataDir,
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      LOG_LEVEL: 'error',
      KILL_GRACE_SECONDS: '1',
      WORKER_CONCURRENCY: '8',
      DEFAULT_MAX_CONCURRENT_JOBS: '8',
    }, { user: { uid: NOBODY, gid: NOBODY } });
    admin = await srv.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    [a, b] = await Promise.all([operator(), operator()]);
  }, 90_000);

  afterAll(async () => {
    await srv?.kill();
    killMarked(markers);
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('the server really runs as 65534 with no supplementary groups, and /health says "isolation":"reduced"', async () => {
    const status = readFileSync(`/proc/${srv.pid}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
    expect(status).toMatch(new RegExp(`^Gid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
    expect(status).toMatch(/^Groups:\s*$/m);
    const health = await srv.request('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', isolation: 'reduced' });
  });

  it("1. a job cannot read the server's environment, nor see the server's processes in its /proc", async () => {
    await Promise.all([
      attackServerEnviron(srv, a, srv.pid, [ADMIN_PASSWORD, 'DATA_DIR=']),
      attackServerPids(srv, a, srv.pid),
    ]);
  });

  it("2. a job cannot read the database or the generated JWT secret, nor list other jobs' run directories", async () => {
    await attackDataDir(srv, a, admin, dataDir);
  });

  it("3. B's job cannot kill A's running job nor read its environment (both run as the server's uid on the host)", async () => {
    const m = marker('3002');
    markers.add(m);
    const { victimHostUid } = await attackOtherUsersJob(srv, a, b, m);
    // No uid of its own without privilege: the namespaces alone keep them apart.
    expect(victimHostUid).toBe(String(NOBODY));
  });
});
