import { defineConfig } from 'vitest/config';

export default defineConfig({
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
