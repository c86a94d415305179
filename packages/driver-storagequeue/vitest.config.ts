import { project } from '../../vitest.shared.js';

export default project('driver-storagequeue', { globalSetup: ['./test/global-setup.ts'] });
