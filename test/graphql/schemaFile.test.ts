import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { schemaText } from '../../src/graphql/printSchema.js';

describe('schema.graphql', () => {
  it('is the schema the code builds (run `npm run generate` when this fails)', () => {
    const onDisk = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
    expect(onDisk).toBe(schemaText());
  });
});
