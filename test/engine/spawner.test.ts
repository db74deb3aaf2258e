// The spawner helper forks job processes out of the worker's process; output
// comes back over unix sockets. Real processes throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { startRun, type OutputChunk } from '../../src/engine/runner.js';
import { startSpawner, type Spawner } from '../../src/engine/spawnerClient.js';

const collect = () => {
  const chunks: OutputChunk[] = [];
  return { chunks, sink: { write: async (c: OutputChunk[]) => void chunks.push(...c) }, text: (s: 'stdout' | 'stderr') => chunks.filter((c) => c.stream === s).map((c) => c.data).join('') };
};

const groupAlive = (pgid: number) => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('spawner helper', () => {
  let spawner: Spawner;
  beforeAll(async () => { spawner = await startSpawner(createLogger('error')); });
  afterAll(async () => { await spawner?.close(); });

  const run = (argv: string[], extra: { timeoutSeconds?: number } = {}) => {
    const out = collect();
    const handle = startRun({ argv, cwd: '/tmp', env: { GREETING: 'hi' }, maxLogBytes: 16 << 20, killGraceMs: 500, launcher: spawner.launcher, ...extra }, out.sink);
    return { handle, out };
  };

  it('gives each of many concurrent short jobs exactly its own output and exit code', async () => {
    const runs = Array.from({ length: 60 }, (_, i) => run(['sh', '-c', `echo out-${i}; echo err-${i} >&2; exit ${i % 3}`]));
    const results = await Promise.all(runs.map((r) => r.handle.done));
    results.forEach((r, i) => {
      expect(r.exitCode).toBe(i % 3);
      expect(runs[i]!.out.text('stdout')).toBe(`out-${i}\n`);
      expect(runs[i]!.out.text('stderr')).toBe(`err-${i}\n`);
    });
  });

  it('passes the job environment and nothing of ours', async () => {
    process.env.SPAWNER_SECRET = 'do-not-leak';
    const { handle, out } = run(['env']);
    await handle.done;
    expect(out.text('stdout')).toContain('GREETING=hi');
    expect(out.text('stdout')).not.toContain('do-not-leak');
  });

  it('reports a missing program as a spawn error', async () => {
    const { handle } = run(['/no/such/program']);
    const r = await handle.done;
    expect(r).toMatchObject({ outcome: 'failed', exitCode: null });
    expect(r.error).toContain('ENOENT');
    expect(await handle.started).toBeUndefined();
  });

  it('streams a large output completely', async () => {
    const { handle, out } = run(['sh', '-c', 'seq 1 200000']);
    await handle.done;
    const lines = out.text('stdout').trim().split('\n');
    expect(lines.length).toBe(200000);
    expect(lines[199999]).toBe('200000');
  });

  it('cancels and times out the whole process group', async () => {
    const a = run(['sh', '-c', 'sleep 300 & sleep 300']);
    const pgidA = (await a.handle.started)!;
    a.handle.cancel();
    expect((await a.handle.done).outcome).toBe('canceled');
    expect(groupAlive(pgidA)).toBe(false);

    const b = run(['sh', '-c', 'sleep 300 & sleep 300'], { timeoutSeconds: 1 });
    const pgidB = (await b.handle.started)!;
    const r = await b.handle.done;
    expect(r.error).toContain('timed out');
    expect(groupAlive(pgidB)).toBe(false);
  });
});
