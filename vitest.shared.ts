import { defineProject, type UserWorkspaceConfig } from 'vitest/config';

/**
 * Packages resolve each other's TypeScript sources, so tests never need a build first. Vitest hands
 * the SSR conditions to its workers as Node `--conditions`: listing `import` there would make
 * CommonJS dependencies (the Azure SDK's `require('long')`) load ESM builds, so keep it to these.
 */
const conditions = ['@switchyard/source', 'node'];

export function project(name: string, test: UserWorkspaceConfig['test'] = {}): UserWorkspaceConfig {
  return defineProject({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@switchyard/source'] } },
    test: {
      name,
      include: ['test/**/*.test.ts'],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      // In CI a failed test runs once more: one bad scheduling moment on a shared machine should
      // not throw a whole run away. The CI summary still names every test that passed only on its
      // second run (scripts/test-counts.mjs), so a flaky test stays visible and gets fixed.
      retry: process.env.CI ? 1 : 0,
      ...test,
    },
  });
}
