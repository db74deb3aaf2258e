// The logs and fanout figures need the live log features (graphql-ws
// `jobLog` subscription, src/graphql/types/subscriptions.ts; SSE route
// GET /jobs/{id}/logs/stream, src/rest/logStream.ts). Before measuring,
// check on a throw-away server that both deliver a small job's output and
// complete; otherwise stop with a clear message instead of a confusing number.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { submit } from './api.js';
import { followSse, subscribeJobLog, wsConnect } from './live.js';
import { ROOT, login, withServer } from './server.js';

const EXPECTED = 'one\ntwo\n';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: nothing complete within ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(t));
}

export async function requireLiveFeatures(figure: string): Promise<void> {
  const problems: string[] = [];
  for (const f of ['src/graphql/types/subscriptions.ts', 'src/rest/logStream.ts']) if (!existsSync(join(ROOT, f))) problems.push(`${f} does not exist`);
  if (!problems.length) {
    await withServer({ label: 'live-check' }, async (s) => {
      const token = await login(s.api);
      const job = await submit(s.api, token, ['sh', '-c', "printf 'one\\n'; sleep 0.2; printf 'two\\n'"], 'live-check');
      const conn = wsConnect(s.url, token);
      try {
        await withTimeout(conn.connected, 15_000, 'graphql-ws connection_init');
        let text = '';
        const sub = subscribeJobLog(conn.client, job.id, (c) => void (text += c.data));
        await withTimeout(sub.done, 30_000, 'jobLog subscription');
        if (text !== EXPECTED) problems.push(`jobLog delivered ${JSON.stringify(text)}, expected ${JSON.stringify(EXPECTED)}`);
      } catch (err) {
        problems.push(`graphql-ws jobLog: ${(err as Error).message}`);
      } finally {
        await conn.dispose();
      }
      try {
        let text = '';
        const f = followSse(s.api, token, job.id, (d) => void (text += d + '\n'));
        const { end } = await withTimeout(f.done, 30_000, 'SSE logs/stream');
        // SSE events carry the chunk's lines; joined per event plus "\n" they end with an extra empty line per chunk.
        const lines = text.split('\n').filter(Boolean).join('\n') + '\n';
        if (lines !== EXPECTED) problems.push(`SSE logs/stream delivered ${JSON.stringify(text)}, expected the lines of ${JSON.stringify(EXPECTED)}`);
        if (end === null) problems.push('SSE logs/stream ended without `event: end`');
      } catch (err) {
        problems.push(`SSE logs/stream: ${(err as Error).message}`);
      }
    });
  }
  if (problems.length) {
    throw new Error(
      `the ${figure} figure needs the live log features, which do not work yet:\n  - ${problems.join('\n  - ')}\n` +
        'It measures the graphql-ws `jobLog(id, after)` subscription (src/graphql/types/subscriptions.ts) and ' +
        'GET /api/v1/jobs/{id}/logs/stream with Accept: text/event-stream (src/rest/logStream.ts); rerun once they are in dist/.',
    );
  }
}
