#!/usr/bin/env node
// The `switchyard` executable. It is a committed file so that npm links it when the package is
// installed (a bin pointing into dist/ does not exist yet at `npm ci` time in this repository and
// would not be linked); it runs the compiled CLI that `npm run build` writes to dist/bin.js.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/bin.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(
    'switchyard: the CLI is not built (dist/bin.js is missing); run "npm run build" first\n',
  );
  process.exitCode = 3;
}
