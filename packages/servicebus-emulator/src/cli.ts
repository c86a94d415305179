#!/usr/bin/env node
/** `switchyard-servicebus-emulator [--port N] [--host H] [--lock-duration-ms N] [--max-delivery-count N] [--max-message-size-bytes N]` */
import { parseArgs } from 'node:util';
import { startEmulator } from './server.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '5672' },
    host: { type: 'string', default: '127.0.0.1' },
    'lock-duration-ms': { type: 'string' },
    'max-delivery-count': { type: 'string' },
    'max-message-size-bytes': { type: 'string' },
  },
});

function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative integer, got '${value}'\n`);
    process.exit(2);
  }
  return n;
}

const emulator = await startEmulator({
  port: int('port', values.port),
  host: values.host,
  lockDurationMs: int('lock-duration-ms', values['lock-duration-ms']),
  maxDeliveryCount: int('max-delivery-count', values['max-delivery-count']),
  maxMessageSizeBytes: int('max-message-size-bytes', values['max-message-size-bytes']),
});
process.stdout.write(`${emulator.connectionString}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  emulator.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
