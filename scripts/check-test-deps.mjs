#!/usr/bin/env node
// Runs before `npm test`: the suite uses the real PostgreSQL, Redis,
// Chromium and (as root) nftables of this machine, so say plainly what is missing and how to fix it.
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

const probe = (port) =>
  new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(2000);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.once('timeout', () => { s.destroy(); resolve(false); });
  });

const problems = [];
if (!(await probe(5432))) problems.push('PostgreSQL is not answering on 127.0.0.1:5432 (start it: pg_ctlcluster <version> main start)');
if (!(await probe(6379))) problems.push('Redis is not answering on 127.0.0.1:6379 (start it: redis-server --daemonize yes)');
if (!existsSync('/usr/bin/chromium')) problems.push('Chromium is missing at /usr/bin/chromium (install it: apt-get install -y chromium)');
// As root, jobs run as uids of their own and the firewall tests need nft.
if (process.getuid?.() === 0 && !existsSync('/usr/sbin/nft')) problems.push('nftables is missing (install it: apt-get install -y nftables)');
if (problems.length) {
  console.error('The test suite needs:\n- ' + problems.join('\n- ') + '\n(.ci/run starts and installs these itself.)');
  process.exit(1);
}
