import { project } from '../../vitest.shared.js';

const config = project('servicebus-emulator');
// Vitest passes ssr.resolve.conditions to its workers as Node `--conditions`; with `import` among
// them, the CommonJS build of @azure/service-bus gets long's ESM build from require('long') and
// breaks (Long.fromNumber is not a function). Keep only what our own sources need.
if (config.ssr?.resolve) config.ssr.resolve.conditions = ['@switchyard/source', 'node'];

export default config;
