import { cp, rm } from 'node:fs/promises';
import { defineConfig } from 'tsup';

// One file for the Functions host: the workspace packages are bundled from their TypeScript
// sources; npm dependencies (@azure/*, pg, zod, PGlite) stay external in node_modules.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  outDir: 'dist',
  clean: true,
  sourcemap: true,
  noExternal: [/^@switchyard\//],
  // Every other bare import (node:*, @azure/*, pg, zod, PGlite …) is loaded from node_modules.
  external: [/^(?!@switchyard\/|\.|\/)/],
  // driver-postgres reads its migrations from `../sql/` next to the running module: ship them.
  // The dashboard serves its bundle from `app/` next to the running module: ship it too.
  async onSuccess() {
    await rm('sql', { recursive: true, force: true });
    await cp('../../packages/driver-postgres/sql', 'sql', { recursive: true });
    await cp('../../packages/dashboard/dist/app', 'dist/app', { recursive: true });
  },
  esbuildOptions(options) {
    options.conditions = ['@switchyard/source'];
  },
});
