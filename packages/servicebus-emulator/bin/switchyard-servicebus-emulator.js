#!/usr/bin/env node
// The `switchyard-servicebus-emulator` executable. A committed file, so npm links it at install
// time (before dist/ exists in this repository); it runs the compiled CLI from `npm run build`.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(
    'switchyard-servicebus-emulator: not built (dist/cli.js is missing); run "npm run build" first\n',
  );
  process.exitCode = 3;
}
