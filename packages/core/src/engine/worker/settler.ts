import { toErrorInfo } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { ReceivedMessage, Settlement, SettlementAction, Transport } from '../../transport.js';
import { Batcher } from '../../util/batcher.js';
import { DEFAULTS } from '../defaults.js';

/**
 * Settles a receive loop's messages in group commits. A settlement that fails is logged, not
 * retried: its message's lock runs out and the message comes back, which the engine tolerates.
 */
export class Settler {
  private readonly batcher: Batcher<Settlement, undefined>;

  constructor(transport: Transport, transportName: string, logger: Logger) {
    const size = DEFAULTS.batchers.settlements;
    this.batcher = new Batcher(
      async (items) => {
        try {
          await transport.settle(items);
        } catch (err) {
          logger.error('settling messages failed; they will be redelivered', {
            transport: transportName,
            error: toErrorInfo(err).message,
          });
        }
        return items.map(() => undefined);
      },
      size.maxBatch,
      size.inFlight,
    );
  }

  settle(message: ReceivedMessage, action: SettlementAction): Promise<void> {
    return this.batcher.add(toSettlement(message, action));
  }
}

/** The settlement of one message, built field by field (one object shape per action). */
function toSettlement(message: ReceivedMessage, s: SettlementAction): Settlement {
  switch (s.action) {
    case 'complete':
      return { message, action: 'complete' };
    case 'retry':
      return { message, action: 'retry', delayMs: s.delayMs };
    case 'deadLetter':
      return s.description === undefined
        ? { message, action: 'deadLetter', reason: s.reason }
        : { message, action: 'deadLetter', reason: s.reason, description: s.description };
  }
}
