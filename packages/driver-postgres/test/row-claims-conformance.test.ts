import { taskRowClaimsConformance } from '@switchyard/core/testing';
import { postgresStore, postgresTransport } from '../src/index.js';
import { engines } from './helpers.js';

for (const engine of await engines()) {
  // One schema per test: the transport claims the store's rows in it.
  let schema = '';
  let n = 0;
  taskRowClaimsConformance(`postgres (${engine.name})`, {
    store: () => {
      schema = engine.schema();
      return postgresStore({ ...engine.connection(), schema });
    },
    transport: () =>
      postgresTransport({
        ...engine.connection(),
        schema,
        name: `q${n++}`,
        pollIntervalMs: 100,
        visibilityTimeoutMs: 1000,
      }),
    elsewhere: () => postgresTransport({ ...engine.connection(), schema: engine.schema() }),
    visibilityMs: 1000,
  });
}
