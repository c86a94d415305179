import { project } from '../../vitest.shared.js';

// Campaign files run beside the rest of the suite and beside each other: each has its own
// database, its own emulators on free ports, and checks for leftover workers by its own owner
// mark (fleet.ts), never by another campaign's.
export default project('chaos', { testTimeout: 300_000 });
