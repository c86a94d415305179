import { memoryTransport } from '@switchyard/core';
import { crashWindowSuite } from '@switchyard/core/testing';
import { postgresStore, postgresTransport } from '../src/index.js';
import { pgliteEngine, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();

// Each hand-off window crashed once, on the Postgres store with the Postgres queue (one database
// runs everything) and with the memory transport (the store alone under test).
for (const engine of server ? [serverEngine(), pgliteEngine()] : [pgliteEngine()]) {
  let n = 0;
  crashWindowSuite(`postgres store + postgres transport (${engine.name})`, {
    store: () => postgresStore({ ...engine.connection(), schema: engine.schema() }),
    transport: () =>
      postgresTransport({
        ...engine.connection(),
        schema: engine.schema(),
        name: `w${n++}`,
        pollIntervalMs: 100,
        visibilityTimeoutMs: 1000,
      }),
    visibilityMs: 1000,
  });
  if (engine.name === 'server') {
    crashWindowSuite(`postgres store + memory transport (${engine.name})`, {
      store: () => postgresStore({ ...engine.connection(), schema: engine.schema() }),
      transport: () => memoryTransport({ visibilityTimeoutMs: 1000 }),
      visibilityMs: 1000,
    });
  }
}
