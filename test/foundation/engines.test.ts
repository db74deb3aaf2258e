// `npm install` on the Node version the README states prints no "Unsupported
// engine" warning: every installed package (package-lock.json records each
// one's declared engines) admits the oldest Node this project says it supports.
import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as { packages: Record<string, { version?: string; engines?: { node?: string } | string[] }> };
const readme = readFileSync(new URL('README.md', root), 'utf8');

describe('supported Node versions', () => {
  const oldest = semver.minVersion(pkg.engines.node)!.version;

  it('the README states the same minimum as package.json engines', () => {
    expect(readme).toContain(`Node.js ${semver.major(oldest)}.${semver.minor(oldest)}+`);
  });

  it(`every locked package admits Node ${oldest}`, () => {
    const excluding = Object.entries(lock.packages)
      .filter(([path]) => path !== '')
      .flatMap(([path, meta]) => {
        const range = Array.isArray(meta.engines) ? undefined : meta.engines?.node;
        return range && !semver.satisfies(oldest, range) ? [`${path.replace(/^.*node_modules\//, '')}@${meta.version} wants node ${range}`] : [];
      });
    expect(excluding).toEqual([]);
  });
});
