// Types the REST layer's GraphQL documents (src/rest/operations/*.graphql)
// against schema.graphql. `npm run generate` prints the schema first, then runs
// this; `--check` exits 1 when the file on disk is stale (run in CI).
// It calls @graphql-codegen/core directly: the codegen CLI adds nothing this
// one-file setup uses, and its loaders pull in packages that require Node 22.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { codegen } from '@graphql-codegen/core';
import * as typedDocumentNode from '@graphql-codegen/typed-document-node';
import * as typescriptOperations from '@graphql-codegen/typescript-operations';
import { buildSchema, concatAST, parse, validate } from 'graphql';

const root = join(import.meta.dirname, '..');
const operationsDir = join(root, 'src/rest/operations');
const target = join(operationsDir, 'generated.ts');

const schemaText = readFileSync(join(root, 'schema.graphql'), 'utf8');
const schema = buildSchema(schemaText);
const documents = readdirSync(operationsDir)
  .filter((name) => name.endsWith('.graphql'))
  .sort()
  .map((name) => ({ location: join('src/rest/operations', name), document: parse(readFileSync(join(operationsDir, name), 'utf8')) }));
// Fragments are shared between files, so the documents are validated together.
const errors = validate(schema, concatAST(documents.map((d) => d.document)));
if (errors.length) throw new Error(`src/rest/operations: ${errors.map((e) => e.message).join('; ')}`);

const output = await codegen({
  schema: parse(schemaText),
  schemaAst: schema,
  documents,
  filename: target,
  config: {
    useTypeImports: true,
    enumsAsTypes: true,
    avoidOptionals: { field: true, inputValue: false, object: true },
    scalars: { DateTime: 'string', JSON: 'unknown', JSONObject: 'Record<string, unknown>', ID: 'string' },
    dedupeFragments: true,
  },
  plugins: [{ 'typescript-operations': {} }, { 'typed-document-node': {} }],
  pluginMap: { 'typescript-operations': typescriptOperations, 'typed-document-node': typedDocumentNode },
});

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (current !== output) {
    process.stderr.write('src/rest/operations/generated.ts is stale: run `npm run generate`\n');
    process.exit(1);
  }
} else {
  writeFileSync(target, output);
}
