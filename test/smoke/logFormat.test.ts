// The console as an operator meets it: readable lines at a terminal (a real
// pseudo-terminal from util-linux `script`), JSON lines when piped, LOG_FORMAT
// to choose, NO_COLOR honoured. Real server processes on SQLite.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { freePort, REPO_ROOT, runJob, serverStarted, type SpawnedServer } from '../helpers/jobs.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from '../helpers/server.js';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
});

/** `serve` on a fresh SQLite directory; `tty` runs it on a pseudo-terminal. */
async function start(env: Record<string, string>, tty: boolean): Promise<SpawnedServer> {
  const db = await createTestDatabase('sqlite');
  mkdirSync(join(db.dataDir, 'workspace'), { recursive: true });
  const port = String(await freePort());
  const fullEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', TERM: 'xterm',
    PORT: port, HOST: '127.0.0.1', DATA_DIR: db.dataDir, DATABASE_URL: db.url,
    JWT_SECRET: 'log-format-test-secret-0123456789-abcdef', ADMIN_EMAIL, ADMIN_PASSWORD, ...env,
  };
  const command = `exec ${process.execPath} --import tsx src/main.ts serve`;
  const child = tty
    ? spawn('script', ['-qefc', command, '/dev/null'], { cwd: REPO_ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    : spawn('sh', ['-c', command], { cwd: REPO_ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  return serverStarted(child, `http://127.0.0.1:${port}/api/v1`, 45_000);
}

const lines = (s: SpawnedServer) => s.output().split(/\r?\n/).filter(Boolean);
const TEXT_LINE = /^\d\d:\d\d:\d\d\.\d{3} (\x1b\[\d+m)?(DEBUG|INFO |WARN |ERROR)(\x1b\[0m)? \S/;

describe('console output', () => {
  it('at a terminal: one readable line per event, the level coloured, a job\'s start and finish with id, owner, exit and duration', async () => {
    const s = await start({}, true);
    const token = await s.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    const { job } = await runJob(s, token, { command: ['sh', '-c', 'exit 3'] });
    const out = lines(s);
    expect(out.length).toBeGreaterThan(0);
    for (const line of out) expect(line).toMatch(TEXT_LINE);
    expect(out.find((l) => l.includes(' listening '))).toMatch(/\x1b\[36mINFO \x1b\[0m listening url=http:\/\/127\.0\.0\.1:\d+ /);
    expect(out.find((l) => l.includes('job started') && l.includes(job.id))).toMatch(/ownerId=\S+ attempt=1 pid=\d+/);
    expect(out.find((l) => l.includes('job finished') && l.includes(job.id))).toMatch(/status=failed exitCode=3 durationMs=\d+/);
  });

  it('at a terminal with NO_COLOR: the same lines without escape sequences', async () => {
    const s = await start({ NO_COLOR: '1' }, true);
    const out = lines(s);
    expect(out.find((l) => l.includes(' listening '))).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  listening url=/);
    expect(s.output()).not.toContain('\x1b[');
  });

  it('piped (a service manager, a log shipper): JSON lines; LOG_FORMAT=text forces readable lines without colour', async () => {
    const piped = await start({}, false);
    const json = lines(piped);
    for (const line of json) expect(() => JSON.parse(line)).not.toThrow();
    expect(json.map((l) => JSON.parse(l).msg)).toContain('listening');

    const text = await start({ LOG_FORMAT: 'text' }, false);
    expect(lines(text).find((l) => l.includes(' listening '))).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  listening url=/);
    expect(text.output()).not.toContain('\x1b[');
  });
});
