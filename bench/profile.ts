// Summarizes V8 CPU profiles (.cpuprofile, e.g. from a bench run with
// BENCH_PROFILE_DIR=<dir>, which starts every server with --cpu-prof): self
// time per function + script, and per package / file, highest first.
// Usage: npx tsx bench/profile.ts <file-or-dir>... [--top N]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './lib/server.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

function files(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (statSync(p).isDirectory()) out.push(...files(readdirSync(p).map((f) => join(p, f))));
    else if (p.endsWith('.cpuprofile')) out.push(p);
  }
  return out;
}

function short(url: string): string {
  if (!url) return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + '/node_modules/'.length);
  // A build outside the repo (BENCH_MAIN): name its files dist/... too.
  const dist = path.lastIndexOf('/dist/');
  if (dist >= 0 && !path.startsWith(ROOT + '/')) return path.slice(dist + 1);
  if (path.startsWith('/')) return relative(ROOT, path);
  return path; // node:internal/...
}

function pkgOf(url: string): string {
  const s = short(url);
  if (s.startsWith('node:')) return 'node: (core)';
  if (s === '(native)') return '(native/gc/idle)';
  const m = /^(@[^/]+\/[^/]+|[^/]+)/.exec(s);
  if (url.includes('/node_modules/')) return m ? m[1]! : s;
  return s.startsWith('dist/') ? s : `(app) ${s}`;
}

/** Self time in ms per node id, from samples and timeDeltas (falls back to hitCount). */
function selfTimes(p: Profile): Map<number, number> {
  const self = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    for (let i = 0; i < p.samples.length; i++) {
      const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
      self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
    }
  } else {
    const total = (p.endTime - p.startTime) / 1000;
    const hits = p.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0) || 1;
    for (const n of p.nodes) self.set(n.id, ((n.hitCount ?? 0) / hits) * total);
  }
  return self;
}

function main() {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 30;
  const paths = topAt < 0 ? args : args.filter((_a, i) => i !== topAt && i !== topAt + 1);
  const list = files(paths.length ? paths : ['.']);
  if (!list.length) throw new Error('no .cpuprofile files found');
  // Inclusive time of the service's own functions (dist/...): each sample counts once per distinct frame on its stack.
  const inclusive = new Map<string, number>();
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const f of list) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as Profile;
    const self = selfTimes(p);
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const appKey = (n: Node) => {
      const u = short(n.callFrame.url);
      return u.startsWith('dist/') || u.startsWith('src/') ? `${n.callFrame.functionName || '(anonymous)'}  ${u}:${n.callFrame.lineNumber + 1}` : null;
    };
    for (const [id, ms] of self) {
      if (!ms) continue;
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const k = appKey(byId.get(cur)!);
        if (k && !seen.has(k)) {
          seen.add(k);
          inclusive.set(k, (inclusive.get(k) ?? 0) + ms);
        }
      }
    }
    for (const n of p.nodes) {
      const ms = self.get(n.id) ?? 0;
      if (!ms) continue;
      const name = n.callFrame.functionName || '(anonymous)';
      total += ms;
      if (name === '(idle)') {
        idle += ms;
        continue;
      }
      const key = `${name}  ${short(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
      byFn.set(key, (byFn.get(key) ?? 0) + ms);
      const pk = name.startsWith('(') ? name : pkgOf(n.callFrame.url);
      byPkg.set(pk, (byPkg.get(pk) ?? 0) + ms);
    }
  }
  const busy = total - idle;
  const print = (title: string, m: Map<string, number>, n: number) => {
    process.stdout.write(`\n${title}\n`);
    for (const [k, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      process.stdout.write(`${ms.toFixed(0).padStart(9)} ms ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${k}\n`);
    }
  };
  process.stdout.write(`${list.length} profile(s); sampled ${(total / 1000).toFixed(1)} s, idle ${(idle / 1000).toFixed(1)} s, busy ${(busy / 1000).toFixed(1)} s (percentages of busy)\n`);
  print('self time by package / file:', byPkg, 25);
  print('self time by function:', byFn, top);
  print('inclusive time of the service\'s own functions (dist/):', inclusive, top);
}

main();
