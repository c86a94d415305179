#!/usr/bin/env node
/** `switchyard-servicebus-emulator [--port N] [--host H] [--tier T] [--lock-duration-ms N] [--max-delivery-count N] [--max-message-size-bytes N] …` */
import { parseArgs } from 'node:util';
import { startEmulator } from './server.js';
import type { ServiceBusTier } from './tiers.js';

const TIERS: readonly ServiceBusTier[] = ['unlimited', 'standard', 'premium'];

const USAGE = `Usage: switchyard-servicebus-emulator [options]

A local AMQP 1.0 Service Bus emulator. Prints its connection string (UseDevelopmentEmulator=true)
and runs until SIGINT/SIGTERM.

Options:
  --port N                    TCP port (default 5672; 0 picks a free one)
  --host H                    address to listen on (default 127.0.0.1)
  --tier T                    limits of a real namespace to enforce: unlimited (default),
                              standard (1,000 credits/s, 256 KB) or premium (1 MB, per messaging unit)
  --credits-per-second N      standard: credits per second per namespace (default 1000)
  --messaging-units N         premium: messaging units (default 1)
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
        tier: { type: 'string', default: 'unlimited' },
        'credits-per-second': { type: 'string' },
        'messaging-units': { type: 'string' },
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

function int(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    const kind = min > 0 ? 'a positive integer' : 'a non-negative integer';
    process.stderr.write(`--${name} must be ${kind}, got '${value}'\n`);
    process.exit(2);
  }
  return n;
}

const tier = values.tier as ServiceBusTier;
if (!TIERS.includes(tier)) {
  process.stderr.write(`--tier must be one of ${TIERS.join(', ')}, got '${values.tier}'\n`);
  process.exit(2);
}
const creditsPerSecond = int('credits-per-second', values['credits-per-second'], 1);
const messagingUnits = int('messaging-units', values['messaging-units'], 1);

const emulator = await startEmulator({
  tier,
  tierOptions: { creditsPerSecond, messagingUnits },
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
