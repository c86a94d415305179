import { transportConformance } from '@switchyard/core/testing';
import { afterAll, describe } from 'vitest';
import { serviceBusTransport } from '../src/index.js';
import { emulatorTransport, tryStartEmulator } from './emulator.js';

// Started at collection time so the suite can be skipped as a whole when no emulator is available.
const emulator = await tryStartEmulator();
afterAll(async () => {
  await emulator?.close();
});

describe.skipIf(!emulator)('against the emulator', () => {
  // With priority lanes: every test runs on the three lane queues, and the priority tests run.
  transportConformance(
    'servicebus (emulator)',
    () => emulatorTransport(emulator!, { priorityLanes: true }).transport,
    { visibilityMs: 1000 },
  );
});

const realConnection = process.env.SERVICEBUS_CONNECTION_STRING;
describe.skipIf(!realConnection)('against a real namespace (SERVICEBUS_CONNECTION_STRING)', () => {
  // The queues must exist, be empty, and have the lock duration given in SERVICEBUS_LOCK_MS
  // (Service Bus allows 5 s at least): the stage queue, the task queue and its lanes
  // `<task>-high` and `<task>-low`.
  transportConformance(
    'servicebus (real)',
    () =>
      serviceBusTransport({
        connectionString: realConnection!,
        queues: {
          stage: process.env.SERVICEBUS_STAGE_QUEUE ?? 'sb-jobs',
          task: process.env.SERVICEBUS_TASK_QUEUE ?? 'sb-tasks',
        },
        priorityLanes: true,
      }),
    {
      visibilityMs: Number(process.env.SERVICEBUS_LOCK_MS ?? 5000),
      slackMs: 5000,
      testTimeoutMs: 90_000,
    },
  );
});
