import { defineConfig } from 'vitest/config';

export default defineConfig({
  // graphql 16 ships CJS and ESM builds without an exports map; Node loads
  // the CJS one for Pothos and yoga, so the tests must load the same one
  // (two copies make graphql-js refuse the schema "from another realm").
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Suites start real servers and child processes; a 2-core machine runs
    // two files at a time comfortably.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
