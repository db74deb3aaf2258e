import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  childEnv, killProcessGroup, startRun,
  type OutputChunk, type OutputSink, type RunSpec,
} from '../../src/engine/runner.js';

const MiB = 1024 * 1024;

function spec(argv: string[], extra: Partial<RunSpec> = {}): RunSpec {
  return { argv, cwd: '/', env: {}, maxLogBytes: MiB, ...extra };
}

/** Keeps everything it is given; also checks the sink is never called concurrently. */
function collector(delayMs = 0) {
  const batches: OutputChunk[][] = [];
  let busy = false;
  let overlapped = false;
  const sink: OutputSink = {
    async write(chunks) {
      if (busy) overlapped = true;
      busy = true;
      batches.push(chunks);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      busy = false;
    },
  };
  const text = (s: 'stdout' | 'stderr') =>
    batches.flat().filter((c) => c.stream === s).map((c) => c.data).join('');
  return { sink, batches, text, overlapped: () => overlapped };
}

function run(argv: string[], extra: Partial<RunSpec> = {}, delayMs = 0) {
  const c = collector(delayMs);
  const handle = startRun(spec(argv, extra), c.sink);
  return { handle, ...c };
}

function groupGone(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

describe('startRun', () => {
  const savedSecret = process.env.JWT_SECRET;
  afterEach(() => {
    if (savedSecret === undefined) delete process.env.JWT_SECRET;
    else process.env.JWT_SECRET = savedSecret;
  });

  it('reports success for `true`', async () => {
    const { handle } = run(['true']);
    expect(handle.pid).toBeTypeOf('number');
    expect(await handle.done).toEqual({
      exitCode: 0, signal: null, outcome: 'success', error: null,
      stdoutBytes: 0, stderrBytes: 0, stdoutTruncated: false, stderrTruncated: false, stdoutDropped: 0, stderrDropped: 0,
    });
  });

  it('reports a non-zero exit as failed without an error', async () => {
    const r = await run(['false']).handle.done;
    expect(r).toMatchObject({ exitCode: 1, signal: null, outcome: 'failed', error: null });
    const r3 = await run(['sh', '-c', 'exit 3']).handle.done;
    expect(r3).toMatchObject({ exitCode: 3, outcome: 'failed', error: null });
  });

  it('reports spawn failures without throwing', async () => {
    const missing = run(['definitely-not-a-program-xyz']);
    expect(missing.handle.pid).toBeUndefined();
    expect(await missing.handle.done).toMatchObject({ exitCode: null, outcome: 'failed', error: expect.stringMatching(/^spawn definitely-not-a-program-xyz: ENOENT \(not found in PATH=\/usr\/local\/sbin:.*\)$/) });
    expect(await run(['true'], { cwd: '/nonexistent-dir-xyz' }).handle.done)
      .toMatchObject({ outcome: 'failed', error: 'spawn true: ENOENT (working directory /nonexistent-dir-xyz does not exist)' });
    expect(await run(['/etc/passwd']).handle.done).toMatchObject({ outcome: 'failed', error: 'spawn /etc/passwd: EACCES' });
    expect(await run(['']).handle.done).toMatchObject({ outcome: 'failed', exitCode: null });
    expect((await run(['true'], { env: { A: 'x\0y' } }).handle.done).outcome).toBe('failed');
  });

  it('reports death by signal', async () => {
    const r = await run(['sh', '-c', 'kill -9 $$']).handle.done;
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGKILL', outcome: 'failed', error: 'killed by signal SIGKILL' });
  });

  it('keeps stdout and stderr apart, in the order they were read', async () => {
    const c = run(['sh', '-c', 'echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2']);
    const r = await c.handle.done;
    expect(c.text('stdout')).toBe('out1\nout2\n');
    expect(c.text('stderr')).toBe('err1\n');
    expect(c.batches.flat().map((ch) => ch.stream)).toEqual(['stdout', 'stderr', 'stdout']);
    expect(r).toMatchObject({ stdoutBytes: 10, stderrBytes: 5 });
  });

  it('passes the job env but none of the server env', async () => {
    process.env.JWT_SECRET = 's3cret';
    const c = run(['env'], { env: { FOO: 'bar baz', LANG: 'en_US.UTF-8' } });
    await c.handle.done;
    const vars = Object.fromEntries(
      c.text('stdout').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(vars).toEqual({
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: process.env.HOME || '/',
      LANG: 'en_US.UTF-8',
      FOO: 'bar baz',
    });
    expect(c.text('stdout')).not.toContain('s3cret');
  });

  it('childEnv builds a minimal environment', () => {
    process.env.JWT_SECRET = 's3cret';
    const env = childEnv({ PATH: '/opt/bin' });
    expect(Object.keys(env).sort()).toEqual(['HOME', 'LANG', 'PATH']);
    expect(env.PATH).toBe('/opt/bin');
  });

  it('honors cwd', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'runner-')));
    try {
      const c = run(['pwd'], { cwd: dir });
      await c.handle.done;
      expect(c.text('stdout')).toBe(`${dir}\n`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('does not break a multi-byte character split across writes', async () => {
    const c = run(['sh', '-c', "printf '\\342'; sleep 0.2; printf '\\202\\254'"]);
    const r = await c.handle.done;
    expect(c.text('stdout')).toBe('€');
    expect(r.stdoutBytes).toBe(3);
  });

  it('turns invalid bytes into U+FFFD', async () => {
    const c = run(['sh', '-c', "printf 'a\\377b\\342\\202'"]);
    await c.handle.done;
    expect(c.text('stdout')).toBe('a\uFFFDb\uFFFD');
  });

  it('cuts at exactly maxLogBytes, even inside a character', async () => {
    const c = run(['sh', '-c', "printf '€€'; printf 'ok' >&2"], { maxLogBytes: 4 });
    const r = await c.handle.done;
    expect(c.text('stdout')).toBe('€\uFFFD');
    expect(c.text('stderr')).toBe('ok');
    expect(r).toMatchObject({ stdoutBytes: 4, stdoutTruncated: true, stderrBytes: 2, stderrTruncated: false });
  });

  it('coalesces output into chunks of at most 64 KiB', async () => {
    const c = run(['sh', '-c', 'head -c 1000000 /dev/zero | tr "\\0" a'], { maxLogBytes: 2 * MiB });
    await c.handle.done;
    const chunks = c.batches.flat();
    expect(chunks.every((ch) => ch.data.length <= 64 * 1024)).toBe(true);
    expect(chunks.length).toBeLessThanOrEqual(Math.ceil(1_000_000 / (64 * 1024)) + c.batches.length);
    expect(c.text('stdout')).toBe('a'.repeat(1_000_000));
  });

  it('stores exactly maxLogBytes of a 200 MB flood with bounded memory', async () => {
    let bytes = 0;
    let onlyA = true;
    let peak = process.memoryUsage().rss;
    const before = peak;
    const sample = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
    const handle = startRun(
      spec(['sh', '-c', "head -c 209715200 /dev/zero | tr '\\0' a"], { maxLogBytes: 10 * MiB }),
      {
        async write(chunks) {
          for (const ch of chunks) {
            bytes += Buffer.byteLength(ch.data);
            if (onlyA && /[^a]/.test(ch.data)) onlyA = false;
          }
          peak = Math.max(peak, process.memoryUsage().rss);
        },
      },
    );
    const r = await handle.done;
    clearInterval(sample);
    expect(r).toMatchObject({ outcome: 'success', stdoutBytes: 10 * MiB, stdoutTruncated: true, stderrTruncated: false });
    expect(bytes).toBe(10 * MiB);
    expect(onlyA).toBe(true);
    expect(peak - before).toBeLessThan(100 * MiB);
  });

  it('delivers every byte in order through a slow sink', async () => {
    const c = run(['seq', '1', '200000'], { maxLogBytes: 10 * MiB }, 100);
    const r = await c.handle.done;
    let expected = '';
    for (let i = 1; i <= 200000; i++) expected += `${i}\n`;
    expect(c.text('stdout')).toBe(expected);
    expect(r).toMatchObject({ outcome: 'success', stdoutBytes: expected.length, stdoutTruncated: false });
    expect(c.overlapped()).toBe(false);
  });

  it('survives a failing sink and keeps delivering later batches', async () => {
    let calls = 0;
    const got: string[] = [];
    const origWrite = process.stderr.write;
    let logged = 0;
    process.stderr.write = ((s: string | Uint8Array) => {
      if (String(s).includes('sink.write failed')) logged++;
      return true;
    }) as typeof process.stderr.write;
    try {
      const handle = startRun(spec(['sh', '-c', 'echo one; sleep 0.3; echo two; sleep 0.3; echo three']), {
        async write(chunks) {
          calls++;
          if (calls <= 2) throw new Error('db down');
          got.push(...chunks.map((ch) => ch.data));
        },
      });
      const r = await handle.done;
      expect(r.outcome).toBe('success');
      expect(got.join('')).toBe('three\n');
      expect(logged).toBe(1);
    } finally {
      process.stderr.write = origWrite;
    }
  });

  it('kills background leftovers when the main process exits', async () => {
    const c = run(['sh', '-c', 'sleep 300 & echo hi']);
    const pgid = c.handle.pid!;
    const r = await c.handle.done;
    expect(r).toMatchObject({ exitCode: 0, outcome: 'success', error: null });
    expect(c.text('stdout')).toBe('hi\n');
    expect(groupGone(pgid)).toBe(true);
  });

  it('times out and kills the whole group', async () => {
    const t0 = Date.now();
    const c = run(['sh', '-c', 'sleep 300 & sleep 300'], { timeoutSeconds: 1, killGraceMs: 1000 });
    const pgid = c.handle.pid!;
    const r = await c.handle.done;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(r).toMatchObject({ outcome: 'failed', error: 'timed out after 1s', exitCode: null, signal: 'SIGTERM' });
    expect(groupGone(pgid)).toBe(true);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const c = run(['sh', '-c', 'trap "" TERM; sleep 300 & sleep 300'], { timeoutSeconds: 0.5, killGraceMs: 300 });
    const pgid = c.handle.pid!;
    const r = await c.handle.done;
    expect(r).toMatchObject({ outcome: 'failed', error: 'timed out after 0.5s', signal: 'SIGKILL' });
    expect(groupGone(pgid)).toBe(true);
  });

  it('cancels and kills the whole group', async () => {
    const c = run(['sh', '-c', 'echo started; sleep 300 & sleep 300']);
    const pgid = c.handle.pid!;
    await new Promise((r) => setTimeout(r, 200));
    c.handle.cancel();
    c.handle.cancel('ignored second cancel');
    const r = await c.handle.done;
    expect(r).toMatchObject({ outcome: 'canceled', error: 'canceled', exitCode: null, signal: 'SIGTERM' });
    expect(c.text('stdout')).toBe('started\n');
    expect(groupGone(pgid)).toBe(true);
  });

  it('uses the cancel reason as the error', async () => {
    const c = run(['sleep', '300']);
    c.handle.cancel('canceled by alice');
    expect(await c.handle.done).toMatchObject({ outcome: 'canceled', error: 'canceled by alice' });
  });

  it('ignores cancel after a spawn failure', async () => {
    const c = run(['definitely-not-a-program-xyz']);
    c.handle.cancel();
    expect(await c.handle.done).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/^spawn definitely-not-a-program-xyz: ENOENT/) });
  });
});

describe('killProcessGroup', () => {
  it('returns false for a group that does not exist', async () => {
    const c = run(['true']);
    const pgid = c.handle.pid!;
    await c.handle.done;
    expect(killProcessGroup(pgid, 'SIGTERM')).toBe(false);
  });

  it('refuses to signal our own group or every process', () => {
    expect(() => killProcessGroup(0, 'SIGKILL')).toThrow(RangeError);
    expect(() => killProcessGroup(1, 'SIGKILL')).toThrow(RangeError);
    expect(() => killProcessGroup(-5, 'SIGKILL')).toThrow(RangeError);
  });
});
