#!/usr/bin/env node
/** `switchyard-servicebus-emulator [--port N] [--host H] [--lock-duration-ms N] [--max-delivery-count N] [--max-message-size-bytes N]` */
import { parseArgs } from 'node:util';
import { startEmulator } from './server.js';

const USAGE = `Usage: switchyard-servicebus-emulator [options]

A local AMQP 1.0 Service Bus emulator. Prints its connection string (UseDevelopmentEmulator=true)
and runs until SIGINT/SIGTERM.

Options:
  --port N                    TCP port (default 5672; 0 picks a free one)
  --host H                    address to listen on (default 127.0.0.1)
  --lock-duration-ms N        peek-lock duration of every queue (default 60000)
  --max-delivery-count N      deliveries before a message is dead-lettered (default 10)
  --max-message-size-bytes N  largest message accepted (default 1048576)
  -h, --help                  this help`;

function parse() {
  try {
    return parseArgs({
      options: {
        port: { type: 'string', default: '5672' },
        host: { type: 'string', default: '127.0.0.1' },
        'lock-duration-ms': { type: 'string' },
        'max-delivery-count': { type: 'string' },
        'max-message-size-bytes': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    // A usage mistake gets a message and the usage, never a stack trace.
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`);
    process.exit(2);
  }
}

const values = parse();
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

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
// Printed only once the handlers are installed: a caller may signal as soon as it reads the line.
process.stdout.write(`${emulator.connectionString}\n`);
