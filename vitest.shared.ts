import { defineProject, type UserWorkspaceConfig } from 'vitest/config';

/** Packages resolve each other's TypeScript sources, so tests never need a build first. */
const conditions = ['@switchyard/source', 'import', 'module', 'node', 'default'];

export function project(name: string, test: UserWorkspaceConfig['test'] = {}): UserWorkspaceConfig {
  return defineProject({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@switchyard/source'] } },
    test: { name, include: ['test/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 60_000, ...test },
  });
}
