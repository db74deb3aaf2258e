// Prisma's debug helper remembers the arguments of its last 100 calls for
// crash reports, even while debugging is off, and Prisma logs every query
// with its parameters: the client runtime (its own bundled copy) the query
// plan and the serialized values, each driver adapter (package
// @prisma/debug) the query it runs. During a log flood that kept the last
// few dozen INSERTs' chunks alive long enough to be promoted to V8's old
// generation, which then grew by hundreds of MB between full collections
// (the RSS growth of the `logs` bench). The log sink forgets them after
// each write; only the crash-report context of those queries is lost.
import { Debug } from '@prisma/client/runtime/client';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

type Clear = () => void;
const ADAPTERS = ['@prisma/adapter-better-sqlite3', '@prisma/adapter-pg'];
const HISTORY = 100;
const NAMESPACE = 'jobrunner:log-sink';
const filler = Debug(NAMESPACE);
let adapterClears: Promise<Clear[]> | null = null;

/** The clearLogs of the @prisma/debug copy an adapter imports (each may carry its own), or null. */
async function clearerOf(adapter: string): Promise<Clear | null> {
  try {
    const fromAdapter = createRequire(createRequire(import.meta.url).resolve(adapter));
    const fromUtils = createRequire(fromAdapter.resolve('@prisma/driver-adapter-utils'));
    // require.resolve finds the CommonJS entry; the adapters are loaded as ES modules,
    // whose instance (and history) is the one beside it.
    const cjs = fromUtils.resolve('@prisma/debug');
    const mod = (await import(pathToFileURL(join(cjs, '..', 'index.mjs')).href)) as { clearLogs?: Clear };
    return typeof mod.clearLogs === 'function' ? mod.clearLogs : null;
  } catch {
    return null; // adapter not installed, or another layout: nothing to clear
  }
}

export async function forgetPrismaDebugHistory(): Promise<void> {
  // Someone reading Prisma's debug output would get our filler lines too.
  if (Debug.enabled(NAMESPACE)) return;
  // The runtime's copy has no clear(): push the old entries out instead (a few µs).
  for (let i = 0; i < HISTORY; i++) filler('');
  adapterClears ??= Promise.all(ADAPTERS.map(clearerOf)).then((all) => [...new Set(all.filter((c): c is Clear => c !== null))]);
  for (const clear of await adapterClears) clear();
}
