import { defineConfig } from 'tsup';

// Compiled for consumers that run without the @switchyard/source condition (the built CLI's
// default jobs module, the container image).
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
