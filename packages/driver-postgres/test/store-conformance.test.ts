import { storeConformance } from '@switchyard/core/testing';
import { postgresStore } from '../src/index.js';
import { pgliteEngine, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();

for (const engine of server ? [serverEngine(), pgliteEngine()] : [pgliteEngine()]) {
  // A fresh schema per test: fresh, empty tables; dropped after the file.
  storeConformance(`postgres (${engine.name})`, () =>
    postgresStore({ ...engine.connection(), schema: engine.schema() }),
  );
}
