import { project } from '../../vitest.shared.js';

// One file at a time: each campaign checks afterwards that no worker process of its own is left,
// by name, so two campaigns running together would see each other's workers.
export default project('chaos', { testTimeout: 300_000, fileParallelism: false });
