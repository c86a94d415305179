import { project } from '../../vitest.shared.js';

const config = project('driver-servicebus');
// Vitest passes ssr.resolve.conditions to Node as --conditions; the shared list contains 'import',
// which makes @azure/service-bus's CommonJS `require('long')` load long's ESM build (a namespace
// object: "Long.fromNumber is not a function"). Vite adds import/require itself, so drop it here.
if (config.ssr?.resolve?.conditions) {
  config.ssr.resolve.conditions = config.ssr.resolve.conditions.filter(
    (c) => c !== 'import' && c !== 'default',
  );
}
export default config;
