import { project } from '../../vitest.shared.js';

const base = project('driver-postgres');

// Vitest forwards ssr.resolve.conditions to Node as --conditions; with `import` among them, pg's
// CommonJS entry `require('pg-pool')` loads pg-pool's ESM build and pg fails to load. Vite adds
// `import` itself for ESM imports, so dropping it here loses nothing.
export default {
  ...base,
  ssr: {
    ...base.ssr,
    resolve: { ...base.ssr?.resolve, conditions: ['@switchyard/source', 'node', 'default'] },
  },
};
