import { project } from '../../vitest.shared.js';

export default project('dashboard', { globalSetup: ['test/build-app.setup.ts'] });
