#!/usr/bin/env node
/** The `switchyard` executable; see `switchyard --help`. */
import { runCli } from './cli.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // runCli never rejects; this is the last resort.
    process.stderr.write(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 5;
  },
);
