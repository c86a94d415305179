/** The dead-letter listing says when each message was dead-lettered (the CLI's column). */

import type { ReceivedMessage } from '@switchyard/core/driver';
import { afterAll, describe, expect, it } from 'vitest';
import { emulatorTransport, tryStartEmulator } from './emulator.js';

const emulator = await tryStartEmulator();
afterAll(async () => {
  await emulator?.close();
});

describe.skipIf(!emulator)('listDeadLetters on the emulator', () => {
  it('reports deadLetteredAt for messages the transport dead-lettered', {
    timeout: 30_000,
  }, async () => {
    const { transport } = emulatorTransport(emulator!);
    try {
      await transport.send('task', [{ body: 'x', messageId: 'dl-1' }]);
      let got: ReceivedMessage[] = [];
      while (got.length === 0)
        got = await transport.receive('task', {
          maxMessages: 1,
          waitMs: 500,
          visibilityTimeoutMs: 5000,
        });
      const before = Date.now();
      await transport.settle([
        {
          message: got[0]!,
          action: 'deadLetter',
          reason: 'MaxAttemptsExceeded',
          description: 'boom',
        },
      ]);
      const after = Date.now();
      const [dead] = await transport.listDeadLetters('task');
      expect(dead).toMatchObject({
        id: 'dl-1',
        reason: 'MaxAttemptsExceeded',
        description: 'boom',
      });
      expect(dead?.deadLetteredAt).toBeInstanceOf(Date);
      const at = dead!.deadLetteredAt!.getTime();
      expect(at).toBeGreaterThanOrEqual(before - 1000);
      expect(at).toBeLessThanOrEqual(after + 1000);
    } finally {
      await transport.close();
    }
  });
});
