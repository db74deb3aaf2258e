import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from './schema.js';

/** The text of schema.graphql, as checked in at the repo root. */
export function schemaText(): string {
  return printSchema(lexicographicSortSchema(schema)) + '\n';
}
