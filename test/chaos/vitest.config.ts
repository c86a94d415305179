import { project } from '../../vitest.shared.js';

export default project('chaos', { testTimeout: 300_000 });
