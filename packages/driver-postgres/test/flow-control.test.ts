import { flowControlSuite } from '@switchyard/core/testing';
import { postgresStore, postgresTransport } from '../src/index.js';
import { pgliteEngine, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();

// Per-key limits through the engine on the Postgres store and queue: two workers share them.
for (const engine of server ? [serverEngine(), pgliteEngine()] : [pgliteEngine()]) {
  let n = 0;
  flowControlSuite(`postgres store + postgres transport (${engine.name})`, {
    store: () => postgresStore({ ...engine.connection(), schema: engine.schema() }),
    transport: () =>
      postgresTransport({
        ...engine.connection(),
        schema: engine.schema(),
        name: `f${n++}`,
        pollIntervalMs: engine.name === 'pglite' ? 250 : 50,
        visibilityTimeoutMs: 5000,
      }),
    testTimeoutMs: 90_000,
    // One single-session WASM engine for both workers: fewer, longer waits keep it responsive.
    ...(engine.name === 'pglite' ? { maxWaitMs: 1000 } : {}),
  });
}
