import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Two test files at a time: most of the suite waits on real backends (PostgreSQL, Azurite, the
    // Service Bus emulator, child processes), so two overlap well even on a 2-core machine, where
    // Vitest's default (one fewer than the cores) would run one file at a time.
    maxWorkers: 2,
    projects: [
      'packages/*/vitest.config.ts',
      'examples/*/vitest.config.ts',
      'test/*/vitest.config.ts',
    ],
  },
});
