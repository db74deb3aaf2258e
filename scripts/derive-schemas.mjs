#!/usr/bin/env node
// Prisma fixes the provider per schema file, so the PostgreSQL schema is
// derived mechanically from the SQLite source: same models, other provider,
// other client output, no Pothos generator (the types are provider-neutral).
// `--check` exits 1 when the derived file on disk is stale (run in CI).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = readFileSync(join(root, 'prisma/schema.prisma'), 'utf8');

export function derivePostgres(text) {
  const out = text
    .replace(/^\/\/ The one source schema[\s\S]*?\n\n/m, '// GENERATED from prisma/schema.prisma by scripts/derive-schemas.mjs. Do not edit.\n\n')
    .replace(/generator pothos \{[\s\S]*?\n\}\n\n/, '')
    .replace('output       = "../src/generated/sqlite"', 'output       = "../../src/generated/postgres"')
    .replace('provider = "sqlite"', 'provider = "postgresql"');
  if (out === text || !out.includes('"postgresql"') || !out.includes('generated/postgres')) {
    throw new Error('derive-schemas: the source schema no longer has the expected generator/datasource lines');
  }
  return out;
}

const target = join(root, 'prisma/postgres/schema.prisma');
const derived = derivePostgres(source);
if (process.argv.includes('--check')) {
  let current = '';
  try { current = readFileSync(target, 'utf8'); } catch {}
  if (current !== derived) {
    console.error('prisma/postgres/schema.prisma is stale: run `npm run generate`');
    process.exit(1);
  }
} else {
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, derived);
}
