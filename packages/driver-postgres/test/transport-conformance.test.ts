import { transportConformance } from '@switchyard/core/testing';
import { postgresTransport } from '../src/index.js';
import { pgliteEngine, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();

for (const engine of server ? [serverEngine(), pgliteEngine()] : [pgliteEngine()]) {
  const schema = engine.schema();
  let n = 0;
  // One schema per engine; a fresh queue name per test keeps queues empty.
  transportConformance(
    `postgres (${engine.name})`,
    () =>
      postgresTransport({
        ...engine.connection(),
        schema,
        name: `q${n++}`,
        pollIntervalMs: 100,
        visibilityTimeoutMs: 1000,
      }),
    // usage() counts statements, one per call however many messages it carries.
    { visibilityMs: 1000, usageUnit: 'call' },
  );
}
