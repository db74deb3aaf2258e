// Errors a person can act on (issue 15): each answer says what to do next.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

describe('errors a person can act on', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite');
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  it('/docs/ leads to the same Swagger UI as /docs', async () => {
    const res = await fetch(`${s.url}/docs/`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${s.url}/docs`);
    const page = await res.text();
    expect(page).toBe(await (await fetch(`${s.url}/docs`)).text());
    expect(page).toContain('openapi.json');
  });

  it('POST /auth/token with JSON says to send a form, with a curl example', async () => {
    const res = await s.request('POST', '/auth/token', { body: { username: 'admin@example.com', password: 'x' } });
    expect(res.status).toBe(422);
    expect(res.body.detail).toHaveLength(1);
    const msg: string = res.body.detail[0].msg;
    expect(msg).toContain('application/x-www-form-urlencoded');
    expect(msg).toContain('username');
    expect(msg).toContain('password');
    expect(msg).toMatch(/curl .*-d username=.*-d password=/);
    expect(res.text).not.toContain('extra_forbidden');
    // The form still works.
    expect(await s.token('admin@example.com', 'AdminPass123!')).toBeTruthy();
  });
});

describe('errors a person can act on: jobs', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite', { JOB_ISOLATION: 'off' });
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  it('logs of an unfinished job: the 409 points at the live stream', async () => {
    const sub = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'hold', command: ['sleep', '30'] } });
    expect(sub.status).toBe(202);
    const res = await s.request('GET', `/jobs/${sub.body.id}/logs`, { token: s.adminToken });
    expect(res.status).toBe(409);
    expect(res.body.detail).toContain(`GET /jobs/${sub.body.id}/logs/stream`);
    await s.request('POST', `/jobs/${sub.body.id}/cancel`, { token: s.adminToken });
  });

  it('an env key that is not allowed: the error names the key and the pattern', async () => {
    const res = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'env', command: ['true'], env: { '1X': 'a', OK: 'b' } } });
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual([
      expect.objectContaining({ loc: ['body', 'env', '1X'], msg: 'key "1X" is not allowed: keys must match ^[A-Za-z_][A-Za-z0-9_]*$' }),
    ]);
  });
});

describe('errors a person can act on: spawn failures', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite', { JOB_ISOLATION: 'off' });
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  async function failed(body: Record<string, unknown>): Promise<any> {
    const sub = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'spawn', ...body } });
    expect(sub.status).toBe(202);
    for (let i = 0; i < 200; i++) {
      const job = await s.request('GET', `/jobs/${sub.body.id}`, { token: s.adminToken });
      if (job.body.status === 'failed') return job.body;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('job did not fail');
  }

  it('a program not found names the program and the PATH searched', async () => {
    const job = await failed({ command: ['nosuchcmd'] });
    expect(job.exit_code).toBeNull();
    expect(job.error).toMatch(/^spawn nosuchcmd: ENOENT \(not found in PATH=\/usr\/local\/sbin:.*\/bin\)$/);
  });

  it("the PATH searched is the job's own when it sets one", async () => {
    const job = await failed({ command: ['nosuchcmd'], env: { PATH: '/opt/tools/bin:/usr/bin' } });
    expect(job.error).toBe('spawn nosuchcmd: ENOENT (not found in PATH=/opt/tools/bin:/usr/bin)');
  });
});

describe('errors a person can act on: truncated output', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('sqlite', { JOB_ISOLATION: 'off', MAX_LOG_BYTES: '1024' });
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  async function submitted(script: string): Promise<string> {
    const sub = await s.request('POST', '/jobs', { token: s.adminToken, body: { name: 'flood', command: ['sh', '-c', script] } });
    expect(sub.status).toBe(202);
    return sub.body.id;
  }
  async function finished(id: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const job = await s.request('GET', `/jobs/${id}`, { token: s.adminToken });
      if (!['pending', 'running'].includes(job.body.status)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('job did not finish');
  }
  const stream = (id: string, sse = false) =>
    fetch(`${s.api}/jobs/${id}/logs/stream`, { headers: { authorization: `Bearer ${s.adminToken}`, ...(sse ? { accept: 'text/event-stream' } : {}) } }).then((r) => r.text());

  it('the plain-text stream ends with one marker line per truncated stream', async () => {
    const id = await submitted('yes x | head -c 5000; yes e | head -c 3000 >&2');
    const live = stream(id); // followed from the start
    await finished(id);
    for (const text of [await live, await stream(id)]) {
      expect(text.endsWith('[jobrunner] stdout truncated after 1024 bytes\n[jobrunner] stderr truncated after 1024 bytes\n')).toBe(true);
      expect(text.match(/\[jobrunner\]/g)).toHaveLength(2);
      expect(text.length).toBe(2048 + 2 * '[jobrunner] stdout truncated after 1024 bytes\n'.length);
    }
  });

  it('the SSE stream sends event: truncated with {stream, bytes} before end', async () => {
    const id = await submitted('yes x | head -c 5000');
    await finished(id);
    const text = await stream(id, true);
    const events = text.split('\n\n').filter((b) => b.startsWith('event: truncated') || b.startsWith('event: end'));
    expect(events).toEqual([
      'event: truncated\ndata: {"stream":"stdout","bytes":1024}',
      'event: end\ndata: {"status":"success","exit_code":0}',
    ]);
  });

  it('no marker when nothing was dropped', async () => {
    const id = await submitted('echo hello');
    await finished(id);
    expect(await stream(id)).toBe('hello\n');
    expect(await stream(id, true)).not.toContain('truncated');
  });
});
