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
      ...test,
    },
  });
}
