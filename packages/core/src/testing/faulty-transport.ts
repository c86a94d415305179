import type {
  OutgoingMessage,
  QueueKind,
  ReceivedMessage,
  ReceiveOptions,
  Settlement,
  Transport,
} from '../transport.js';

/** Faults to inject; probabilities are 0..1 and drawn from `random` (seed it for reproducible runs). */
export interface TransportFaults {
  /** Probability that a sent message is delivered twice. */
  duplicate?: number;
  /** Extra delivery delay drawn uniformly from [0, maxDelayMs] per message: reorders deliveries. */
  maxDelayMs?: number;
  /** Probability that a settlement is lost, as if the worker crashed after processing: the message comes back. */
  dropSettlement?: number;
  /** Probability that a `send` call fails (rejects without sending anything). */
  failSend?: number;
  /** Decides per outgoing message whether to drop it silently (a lost message). */
  dropMessage?: (queue: QueueKind, message: OutgoingMessage) => boolean;
  /**
   * Probability that a task-row claims call (`offerTasks`, `retryTaskRows`, `deadLetterTaskRows`)
   * "crashes": it throws, either before reaching the transport or — half the time — after its
   * change was made (the caller never learns it succeeded).
   */
  failRowClaims?: number;
  /**
   * False hides the inner transport's task-row claims, so that every task travels as a message
   * this wrapper can duplicate, delay or drop. @defaultValue true
   */
  rowClaims?: boolean;
  /** Random source. @defaultValue Math.random */
  random?: () => number;
}

/** Counts of what was injected. */
export interface FaultStats {
  duplicated: number;
  delayed: number;
  droppedSettlements: number;
  failedSends: number;
  droppedMessages: number;
  failedRowClaims: number;
}

/** A transport wrapper that duplicates, delays, reorders and loses messages and settlements. */
export interface FaultyTransport extends Transport {
  readonly stats: FaultStats;
  readonly inner: Transport;
}

/**
 * Wraps a transport with fault injection, for the engine's invariant tests and for driver authors.
 *
 * @example
 * ```ts
 * const transport = faultyTransport(memoryTransport(), { duplicate: 1, maxDelayMs: 20, dropSettlement: 0.1 });
 * ```
 */
export function faultyTransport(inner: Transport, faults: TransportFaults = {}): FaultyTransport {
  const random = faults.random ?? Math.random;
  const stats: FaultStats = {
    duplicated: 0,
    delayed: 0,
    droppedSettlements: 0,
    failedSends: 0,
    droppedMessages: 0,
    failedRowClaims: 0,
  };
  const chance = (p: number | undefined) => p !== undefined && p > 0 && random() < p;

  const wrapper: FaultyTransport = {
    name: inner.name,
    limits: inner.limits,
    stats,
    inner,
    async send(
      queue: QueueKind,
      messages: readonly OutgoingMessage[],
      options?: { abortSignal?: AbortSignal },
    ) {
      if (chance(faults.failSend)) {
        stats.failedSends++;
        throw new Error('injected send failure');
      }
      const out: OutgoingMessage[] = [];
      for (const message of messages) {
        if (faults.dropMessage?.(queue, message)) {
          stats.droppedMessages++;
          continue;
        }
        const copies = chance(faults.duplicate) ? 2 : 1;
        if (copies === 2) stats.duplicated++;
        for (let i = 0; i < copies; i++) {
          const extra = faults.maxDelayMs ? Math.floor(random() * faults.maxDelayMs) : 0;
          if (extra > 0) stats.delayed++;
          out.push(extra > 0 ? { ...message, delayMs: (message.delayMs ?? 0) + extra } : message);
        }
      }
      for (let i = 0; i < out.length; i += inner.limits.maxBatchMessages) {
        await inner.send(queue, out.slice(i, i + inner.limits.maxBatchMessages), options);
      }
    },
    receive(queue: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]> {
      return inner.receive(queue, options);
    },
    async settle(settlements: readonly Settlement[]) {
      const kept = settlements.filter(() => {
        if (!chance(faults.dropSettlement)) return true;
        stats.droppedSettlements++;
        return false;
      });
      if (kept.length > 0) await inner.settle(kept);
    },
    close: () => inner.close(),
  };
  if (inner.extendLock) wrapper.extendLock = inner.extendLock.bind(inner);
  if (inner.ping) wrapper.ping = inner.ping.bind(inner);
  if (inner.listDeadLetters) wrapper.listDeadLetters = inner.listDeadLetters.bind(inner);
  if (inner.replayDeadLetters) wrapper.replayDeadLetters = inner.replayDeadLetters.bind(inner);
  const { claimTaskRows, offerTasks, retryTaskRows, deadLetterTaskRows } = inner;
  if (
    faults.rowClaims !== false &&
    claimTaskRows &&
    offerTasks &&
    retryTaskRows &&
    deadLetterTaskRows
  ) {
    /** A task-row claims call that may crash before or after its change. */
    const crashing =
      <A>(name: string, call: (arg: A) => Promise<void>) =>
      async (arg: A): Promise<void> => {
        if (!chance(faults.failRowClaims)) return call.call(inner, arg);
        stats.failedRowClaims++;
        if (random() < 0.5) await call.call(inner, arg);
        throw new Error(`injected crash in ${name}`);
      };
    wrapper.claimTaskRows = claimTaskRows.bind(inner);
    wrapper.offerTasks = crashing('offerTasks', offerTasks);
    wrapper.retryTaskRows = crashing('retryTaskRows', retryTaskRows);
    wrapper.deadLetterTaskRows = crashing('deadLetterTaskRows', deadLetterTaskRows);
  }
  return wrapper;
}
