// Builds the dashboard (web/) into dist/web/: one minified ES module and one
// stylesheet, both named by a hash of their content (served as immutable),
// and index.html naming them (served as no-cache). Run at install (prepare)
// and by npm run build.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(root, 'dist', 'web');

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: 'web/src/main.tsx' },
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome111', 'firefox115', 'safari16.4'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: 'web/tsconfig.json',
  entryNames: '[name]-[hash]',
  legalComments: 'none',
  charset: 'utf8',
  write: false,
  outdir: out,
  logLevel: 'warning',
});

mkdirSync(out, { recursive: true });
let js = null;
let css = null;
for (const file of result.outputFiles) {
  writeFileSync(file.path, file.contents);
  if (file.path.endsWith('.js')) js = basename(file.path);
  if (file.path.endsWith('.css')) css = basename(file.path);
}
if (!js || !css) throw new Error(`build-web: expected one .js and one .css, got ${result.outputFiles.map((f) => f.path).join(', ')}`);
const html = readFileSync(join(root, 'web', 'index.html'), 'utf8').replace('%JS%', `/web/${js}`).replace('%CSS%', `/web/${css}`);
// Written aside then renamed: a server starting meanwhile reads the old or the new page, never half of one.
writeFileSync(join(out, 'index.html.tmp'), html);
renameSync(join(out, 'index.html.tmp'), join(out, 'index.html'));
const keep = new Set(['index.html', js, css]);
for (const name of readdirSync(out)) if (!keep.has(name)) rmSync(join(out, name), { force: true, recursive: true });
process.stdout.write(`build-web: dist/web/ (${readdirSync(out).join(', ')})\n`);
