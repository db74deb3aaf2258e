// A job cannot use the service's own backing services: once a root server
// with job isolation on the host network has started, TCP connections from
// any uid in JOB_UID_RANGE to its PostgreSQL and Redis addresses are refused
// (reset at once, so clients fail fast), while the server itself and uids
// outside the range still connect.
import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardBackends } from '../../src/engine/firewall.js';
import type { Logger } from '../../src/logger.js';
import { runJob } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const isRoot = process.getuid?.() === 0;
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, scope: () => quiet };

// Prints "connected" or the error code of one TCP connection attempt.
const PROBE = `
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
s.setTimeout(5000, () => { console.log('TIMEOUT'); process.exit(0); });
s.on('connect', () => { console.log('connected'); s.destroy(); });
s.on('error', (e) => console.log(e.code));
`;

/** One connection attempt from a process running as `uid` (and gid `uid`, no supplementary groups). */
function connectAs(uid: number, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', PROBE, host, String(port)], {
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('exit', () => resolve(out.trim()));
  });
}

/** The same attempt from this (root) process. */
function connectHere(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
  });
}

function nft(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`nft ${args.join(' ')} exited ${code}`))));
  });
}

describe.skipIf(!isRoot)('backing services refused to jobs (needs root: jobs run as other uids only then)', () => {
  let s: TestServer;
  let pgHost: string;
  let pgPort: number;
  let redisHost: string;
  let redisPort: number;
  let uids: { first: number; last: number };

  beforeAll(async () => {
    s = await startServer('postgresql', { REDIS_URL });
    const config = s.app.config;
    expect(config.jobIsolation).toBe('on');
    expect(config.jobNetwork).toBe('host');
    uids = config.jobUids;
    const pg = new URL(s.env.DATABASE_URL!);
    pgHost = pg.hostname;
    pgPort = Number(pg.port || 5432);
    const redis = new URL(REDIS_URL);
    redisHost = redis.hostname;
    redisPort = Number(redis.port || 6379);
  }, 90_000);

  afterAll(async () => {
    await s?.stop();
  });

  it('the server itself still reaches both', async () => {
    const res = await s.request('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', database: true, redis: true });
    expect(await connectHere(pgHost, pgPort)).toBe('connected');
    expect(await connectHere(redisHost, redisPort)).toBe('connected');
  });

  it('a uid inside the job range is refused PostgreSQL and Redis', async () => {
    for (const uid of [uids.first, uids.first + 4242, uids.last]) {
      expect(await connectAs(uid, pgHost, pgPort), `uid ${uid} to PostgreSQL ${pgHost}:${pgPort}`).toBe('ECONNREFUSED');
      expect(await connectAs(uid, redisHost, redisPort), `uid ${uid} to Redis ${redisHost}:${redisPort}`).toBe('ECONNREFUSED');
    }
  });

  it('a job, running as its user\'s uid, is refused both', async () => {
    const user = await s.user('operator');
    // The probe prints its uid, then one line per target once every attempt has ended.
    const probe = `
      const targets = JSON.parse(process.argv[1]);
      console.log('uid', process.getuid());
      Promise.all(targets.map(([host, port]) => new Promise((done) => {
        const s = require('node:net').connect({ host, port });
        s.setTimeout(5000, () => { s.destroy(); done(host + ':' + port + ' TIMEOUT'); });
        s.on('connect', () => { s.destroy(); done(host + ':' + port + ' connected'); });
        s.on('error', (e) => done(host + ':' + port + ' ' + e.code));
      }))).then((lines) => console.log(lines.join('\\n')));`;
    const targets = [[pgHost, pgPort], [redisHost, redisPort]];
    const { job, logs } = await runJob(s, user.token, { command: [process.execPath, '-e', probe, JSON.stringify(targets)] });
    expect(job.status, logs.stderr).toBe('success');
    const [uidLine, ...results] = logs.stdout.trim().split('\n');
    const uid = Number(uidLine!.split(' ')[1]);
    expect(uid >= uids.first && uid <= uids.last, `the job ran as uid ${uid}, outside ${uids.first}-${uids.last}`).toBe(true);
    expect(results).toEqual(targets.map(([h, p]) => `${h}:${p} ECONNREFUSED`));
  });

  it("a job cannot reach the service's PostgreSQL through its Unix socket (trusted locally here) either", async () => {
    const socketDir = '/var/run/postgresql';
    const user = await s.user('operator');
    // The attack: a superuser session over the socket, as `psql -h /var/run/postgresql -U postgres` would open.
    const { job, logs } = await runJob(s, user.token, {
      command: ['sh', '-c', `ls -A ${socketDir}; psql -h ${socketDir} -p ${pgPort} -U postgres -d postgres -tAc "select 'superuser:' || current_setting('is_superuser')"`],
    });
    expect(logs.stdout).not.toContain('superuser:on');
    expect(logs.stdout).not.toContain(`.s.PGSQL.${pgPort}`);
    expect(job.status).toBe('failed');
  });

  it('also over IPv6 loopback', async () => {
    // Redis here listens on ::1 too; where it does not, there is nothing to prove.
    if ((await connectHere('::1', redisPort)) !== 'connected') return;
    expect(await connectAs(uids.first + 77, '::1', redisPort)).toBe('ECONNREFUSED');
  });

  it('a local backend listening on every address is refused on all of them, not only the configured one', async () => {
    const listener = createServer((sock) => sock.destroy());
    await new Promise<void>((r) => listener.listen(0, '0.0.0.0', r));
    const port = (listener.address() as AddressInfo).port;
    try {
      const guard = await guardBackends({ ...s.app.config, redisUrl: `redis://127.0.0.1:${port}` }, quiet);
      expect(guard, guard.detail).toMatchObject({ active: true });
      const others = ['127.0.0.2', ...Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address)];
      for (const address of ['127.0.0.1', ...others]) {
        expect(await connectHere(address, port), `root to ${address}:${port}`).toBe('connected');
        expect(await connectAs(uids.first + 77, address, port), `job uid to ${address}:${port}`).toBe('ECONNREFUSED');
      }
      expect(await connectAs(999, '127.0.0.2', port)).toBe('connected');
    } finally {
      listener.close();
      // Only what this test added: the port is ours while the listener held it.
      await nft(['delete', 'element', 'inet', 'jobrunner', 'local_ports', `{ ${port} }`]).catch(() => {});
      await nft(['delete', 'element', 'inet', 'jobrunner', 'backends_v4', `{ 127.0.0.1 . ${port} }`]).catch(() => {});
    }
  });

  it('a uid outside the range still connects: the rule matches the socket owner', async () => {
    // No JOB_UID_RANGE may start below 1000, so uid 999 is outside every server's range.
    expect(await connectAs(999, pgHost, pgPort)).toBe('connected');
    expect(await connectAs(999, redisHost, redisPort)).toBe('connected');
  });

  it('many servers guarding at once is idempotent: every one is active and the chain keeps its three rules', async () => {
    const config = s.app.config;
    // A sub-range of one already guarded overlaps it: that must be accepted too.
    const narrower = { ...config, jobUids: { first: config.jobUids.first, last: config.jobUids.first + 65535 } };
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => guardBackends(i % 3 === 0 ? narrower : config, quiet)));
    for (const r of results) expect(r, r.detail).toMatchObject({ active: true });
    expect(results[1]!.detail).toContain(`${pgHost}:${pgPort}`);
    const chain = await nft(['list', 'chain', 'inet', 'jobrunner', 'output']);
    expect(chain.split('\n').filter((l) => l.includes('reject')).length).toBe(3);
    expect(await connectAs(uids.first + 4242, pgHost, pgPort)).toBe('ECONNREFUSED');
  });
});
