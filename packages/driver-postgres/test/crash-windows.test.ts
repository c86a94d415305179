import { memoryTransport } from '@switchyard/core';
import { crashWindowSuite } from '@switchyard/core/testing';
import { postgresStore, postgresTransport } from '../src/index.js';
import { pgliteEngine, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();

// Each hand-off window crashed once: on the Postgres store with the Postgres transport in one
// schema (the transport claims the task rows), in two schemas (task messages), and with the
// memory transport (the store alone under test).
for (const engine of server ? [serverEngine(), pgliteEngine()] : [pgliteEngine()]) {
  let n = 0;
  let shared = '';
  crashWindowSuite(`postgres store + postgres transport, one schema (${engine.name})`, {
    store: () => {
      shared = engine.schema();
      return postgresStore({ ...engine.connection(), schema: shared });
    },
    transport: () =>
      postgresTransport({
        ...engine.connection(),
        schema: shared,
        name: `w${n++}`,
        pollIntervalMs: 100,
        visibilityTimeoutMs: 1000,
      }),
    visibilityMs: 1000,
    rowClaims: true,
  });
  crashWindowSuite(`postgres store + postgres transport, two schemas (${engine.name})`, {
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
