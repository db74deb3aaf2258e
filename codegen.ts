// Types the REST layer's GraphQL documents against schema.graphql.
// `npm run generate` prints the schema first, then runs this.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: './schema.graphql',
  documents: ['src/rest/operations/*.graphql'],
  generates: {
    'src/rest/operations/generated.ts': {
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        avoidOptionals: { field: true, inputValue: false, object: true },
        scalars: { DateTime: 'string', JSON: 'unknown', JSONObject: 'Record<string, unknown>', ID: 'string' },
        dedupeFragments: true,
      },
    },
  },
  hooks: { afterOneFileWrite: [] },
};

export default config;
