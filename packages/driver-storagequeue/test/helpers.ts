import { randomBytes } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import type { ReceivedMessage, Transport } from '@switchyard/core/driver';
import { inject } from 'vitest';

/** The shared Azurite's connection string, or '' (then `describe.skipIf(!connectionString)`). */
export const connectionString = inject('azuriteConnectionString');

if (!connectionString) {
  console.warn(
    `[driver-storagequeue] skipping Azurite tests: ${inject('azuriteUnavailable')} (set REQUIRE_SERVICES=1 to fail instead)`,
  );
}

/** A fresh queue name prefix (`t-<random>`), so tests never share queues. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Deletes every queue whose name starts with `prefix`, keeping the emulator's account small. */
export async function deleteQueues(prefix: string): Promise<void> {
  const service = QueueServiceClient.fromConnectionString(connectionString);
  for await (const q of service.listQueues({ prefix })) {
    await service.deleteQueue(q.name).catch(() => undefined);
  }
}

/** A raw SDK client on one queue, to look at what the transport wrote. */
export function rawQueue(name: string) {
  return QueueServiceClient.fromConnectionString(connectionString).getQueueClient(name);
}

/** Receives task messages until `count` arrived or `withinMs` passed (32 at a time, Storage's most). */
export async function receiveAll(
  t: Transport,
  count: number,
  withinMs = 5000,
): Promise<ReceivedMessage[]> {
  const got: ReceivedMessage[] = [];
  const deadline = Date.now() + withinMs;
  while (got.length < count && Date.now() < deadline) {
    got.push(
      ...(await t.receive('task', {
        maxMessages: Math.min(32, count - got.length),
        visibilityTimeoutMs: 5000,
        waitMs: 300,
      })),
    );
  }
  return got;
}
