// Writes schema.graphql from the code (test/graphql/schemaFile.test.ts fails when it is stale).
import { writeFileSync } from 'node:fs';
import { schemaText } from '../src/graphql/printSchema.js';

writeFileSync(new URL('../schema.graphql', import.meta.url), schemaText());
