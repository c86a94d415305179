import { project } from '../../vitest.shared.js';

const base = project('driver-storagequeue', { globalSetup: ['./test/global-setup.ts'] });

// As in driver-postgres: with `import` among the SSR conditions, pg's CommonJS `require('pg-pool')`
// loads pg-pool's ESM build and pg fails to load (the end-to-end test uses postgresStore when
// DATABASE_URL is set).
export default {
  ...base,
  ssr: {
    ...base.ssr,
    resolve: { ...base.ssr?.resolve, conditions: ['@switchyard/source', 'node', 'default'] },
  },
};
