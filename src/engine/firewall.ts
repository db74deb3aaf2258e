// A job cannot use the service's own backing services. When jobs run as uids
// of their own (root server, JOB_ISOLATION=on) on the host network, TCP
// connections from those uids to the configured PostgreSQL and Redis are
// refused with a TCP reset (so a client fails at once) by an nftables
// owner-match rule.
//
// Many servers on one host share it (tests start dozens at once, each with its
// own targets, all with the same uid range), so everything lives in one table,
// `inet jobrunner`, and servers only ever add to it:
//
//   set job_uids     uid ranges (interval)           every server's JOB_UID_RANGE
//   set backends_v4  ipv4_addr . inet_service        every configured backend address
//   set backends_v6  ipv6_addr . inet_service
//   set local_ports  inet_service                    ports of backends on this host
//   chain output     three rules, replaced atomically by each server (flush +
//                    add in one transaction), so there are always exactly three
//
// A backend on this host is refused on every local address (fib daddr type
// local), not only the configured one: a PostgreSQL listening on 0.0.0.0 is
// reachable through 127.0.0.2 or the host's own IP as well. Elements are added
// with `add element` (a no-op when present) and never removed; remove the
// whole thing with `nft delete table inet jobrunner`.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

interface BackendGuard {
  /** True when jobs are refused the backing services (or there is no network backing service to refuse). */
  active: boolean;
  /** One line: what is refused to whom, or why nothing is and what to do about it. */
  detail: string;
}

const NFT_TABLE = 'jobrunner';

interface Backend {
  name: 'PostgreSQL' | 'Redis';
  host: string;
  port: number;
}

interface Target {
  family: 4 | 6;
  address: string;
  port: number;
  local: boolean;
}

const where = (b: Backend) => `${b.name} at ${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`;

/** The TCP backends in the configuration, and the PostgreSQL Unix socket directory when it is reached through one. */
function backends(config: Config): { tcp: Backend[]; socket: string | null } {
  const tcp: Backend[] = [];
  let socket: string | null = null;
  if (config.database.provider === 'postgresql') {
    const url = new URL(config.database.url);
    // libpq (and pg) also take the host from ?host=, where a path is a socket directory.
    // pg connects to localhost when the URL names no host.
    const host = url.searchParams.get('host') || decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, '$1') || 'localhost';
    if (host.startsWith('/')) socket = host;
    else tcp.push({ name: 'PostgreSQL', host, port: Number(url.port || url.searchParams.get('port') || 5432) });
  }
  if (config.redisUrl) {
    const url = new URL(config.redisUrl);
    tcp.push({ name: 'Redis', host: url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost', port: Number(url.port || 6379) });
  }
  return { tcp, socket };
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.replace(/%.*$/, ''));
  return out;
}

function isLocal(family: 4 | 6, address: string, locals: Set<string>): boolean {
  if (family === 4) return address.startsWith('127.') || address === '0.0.0.0' || locals.has(address);
  return address === '::1' || address === '::' || locals.has(address);
}

async function resolve(b: Backend, locals: Set<string>): Promise<Target[]> {
  let found: { address: string; family: number }[];
  if (isIP(b.host)) found = [{ address: b.host, family: isIP(b.host) }];
  else found = await lookup(b.host, { all: true, verbatim: true });
  // A client may try either loopback for "localhost", whatever the resolver says first.
  if (b.host.toLowerCase() === 'localhost') found.push({ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 });
  const targets = new Map<string, Target>();
  for (const f of found) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(f.address);
    const family = mapped ? 4 : (f.family as 4 | 6);
    const address = mapped ? mapped[1]! : f.address.replace(/%.*$/, '');
    targets.set(`${family} ${address}`, { family, address, port: b.port, local: isLocal(family, address, locals) });
  }
  return [...targets.values()];
}

function findNft(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    try {
      accessSync(join(dir, 'nft'), constants.X_OK);
      return join(dir, 'nft');
    } catch { /* not here */ }
  }
  return null;
}

function run(file: string, args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 15_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', (err) => resolvePromise({ code: null, stdout, stderr: stderr + err.message }));
    child.once('close', (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.on('error', () => {}); // nft gone early: its exit status says why
    child.stdin.end(input);
  });
}

/** The uid ranges already in the set (empty when the table does not exist yet). */
async function guardedUids(nft: string): Promise<[number, number][]> {
  const { code, stdout } = await run(nft, ['-j', 'list', 'set', 'inet', NFT_TABLE, 'job_uids']);
  if (code !== 0) return [];
  const ranges: [number, number][] = [];
  const walk = (e: unknown): void => {
    if (typeof e === 'number') ranges.push([e, e]);
    else if (e && typeof e === 'object') {
      const o = e as { range?: [number, number]; elem?: { val?: unknown }; val?: unknown };
      if (Array.isArray(o.range)) ranges.push([Number(o.range[0]), Number(o.range[1])]);
      else if (o.elem !== undefined) walk(o.elem);
      else if (o.val !== undefined) walk(o.val);
    }
  };
  try {
    for (const item of (JSON.parse(stdout) as { nftables: { set?: { elem?: unknown[] } }[] }).nftables) {
      for (const e of item.set?.elem ?? []) walk(e);
    }
  } catch { /* unreadable: add the whole range and let nft say what is wrong */ }
  return ranges;
}

/** The parts of [first, last] no range in `have` covers (an interval set refuses overlapping additions). */
function uncovered(first: number, last: number, have: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  let from = first;
  for (const [a, b] of [...have].sort((x, y) => x[0] - y[0])) {
    if (b < from) continue;
    if (a > last) break;
    if (a > from) out.push([from, a - 1]);
    from = Math.max(from, b + 1);
    if (from > last) return out;
  }
  if (from <= last) out.push([from, last]);
  return out;
}

function script(uidRanges: [number, number][], targets: Target[]): string {
  const t = `inet ${NFT_TABLE}`;
  const lines = [
    `add table ${t}`,
    `add set ${t} job_uids { type uid; flags interval; }`,
    `add set ${t} backends_v4 { type ipv4_addr . inet_service; }`,
    `add set ${t} backends_v6 { type ipv6_addr . inet_service; }`,
    `add set ${t} local_ports { type inet_service; }`,
    `add chain ${t} output { type filter hook output priority 0; policy accept; }`,
    // The same three rules every time, in the same transaction: never duplicated, never missing.
    `flush chain ${t} output`,
    `add rule ${t} output meta skuid @job_uids ip daddr . tcp dport @backends_v4 reject with tcp reset`,
    `add rule ${t} output meta skuid @job_uids ip6 daddr . tcp dport @backends_v6 reject with tcp reset`,
    `add rule ${t} output meta skuid @job_uids fib daddr type local tcp dport @local_ports reject with tcp reset`,
  ];
  if (uidRanges.length) lines.push(`add element ${t} job_uids { ${uidRanges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ')} }`);
  const v4 = targets.filter((x) => x.family === 4).map((x) => `${x.address} . ${x.port}`);
  const v6 = targets.filter((x) => x.family === 6).map((x) => `${x.address} . ${x.port}`);
  const ports = [...new Set(targets.filter((x) => x.local).map((x) => x.port))];
  if (v4.length) lines.push(`add element ${t} backends_v4 { ${v4.join(', ')} }`);
  if (v6.length) lines.push(`add element ${t} backends_v6 { ${v6.join(', ')} }`);
  if (ports.length) lines.push(`add element ${t} local_ports { ${ports.join(', ')} }`);
  return lines.join('\n') + '\n';
}

/**
 * Refuses the configured PostgreSQL and Redis to jobs' uids (see the top of
 * this file). Idempotent and safe to run from many servers at once; the
 * caller logs `detail` when the result is not active.
 */
export async function guardBackends(config: Config, log: Logger): Promise<BackendGuard> {
  if (config.jobNetwork === 'none') return { active: false, detail: 'not needed: JOB_NETWORK=none, jobs have no host network' };
  const { tcp, socket } = backends(config);
  // A firewall cannot see a Unix socket: jobs' mount view hides its directory instead (isolation.ts).
  const socketNote = socket ? `; the PostgreSQL socket in ${socket} is hidden from jobs` : '';
  if (tcp.length === 0) return { active: true, detail: `no network backing service to refuse${socket ? '' : ' (SQLite, no Redis)'}${socketNote}` };
  const exposed = `jobs can connect to ${tcp.map(where).join(' and ')}`;
  if (config.jobIsolation === 'off') return { active: false, detail: `JOB_ISOLATION=off: ${exposed}` };
  if (process.getuid?.() !== 0) {
    return { active: false, detail: `the server is not root, so jobs run as its own uid and no firewall rule can tell them apart: ${exposed}` };
  }

  const locals = localAddresses();
  let targets: Target[];
  try {
    targets = (await Promise.all(tcp.map((b) => resolve(b, locals)))).flat();
  } catch (err) {
    return { active: false, detail: `cannot resolve the backing services' addresses (${(err as Error).message}): ${exposed}` };
  }
  const nft = findNft();
  if (!nft) return { active: false, detail: `nftables (nft) not installed: ${exposed}; install nftables (apt-get install nftables) or set JOB_NETWORK=none` };

  const { first, last } = config.jobUids;
  let uidRanges: [number, number][] = [[first, last]];
  let failure = '';
  // A failed transaction changes nothing. The likely cause is another server's
  // overlapping uid range: add only what is not covered yet, and try again.
  for (let attempt = 1; attempt <= 5; attempt++) {
    const result = await run(nft, ['-f', '-'], script(uidRanges, targets));
    if (result.code === 0) {
      const addrs = targets.map((x) => (x.family === 6 ? `[${x.address}]:${x.port}` : `${x.address}:${x.port}`));
      const detail = `uids ${first}-${last} are refused ${tcp.map(where).join(' and ')} (${addrs.join(', ')}; nftables table inet ${NFT_TABLE})`;
      log.debug('backing services refused to jobs', { uids: `${first}-${last}`, targets: addrs, attempts: attempt });
      return { active: true, detail: detail + socketNote };
    }
    failure = result.stderr.split('\n').find((l) => /error/i.test(l))?.trim() || result.stderr.trim() || `exit status ${result.code}`;
    log.debug('nft failed, retrying', { attempt, failure });
    uidRanges = uncovered(first, last, await guardedUids(nft));
    await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50));
  }
  return { active: false, detail: `nftables (nft) failed: ${failure}: ${exposed}; check that nft works here (root, nf_tables module) or set JOB_NETWORK=none` };
}
