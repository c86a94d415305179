import type { SettlementAction } from '../transport.js';
import type { HeldMessage } from './worker/slots.js';

/** A message handed to the engine, by a worker's receive loop or by a host through `handle()`. */
export interface InboundMessage {
  body: unknown;
  /** 1 on first delivery. */
  deliveryCount: number;
  /** The host poisons the message after this many deliveries. */
  maxDeliveries?: number;
  /** When the transport enqueued it, if it says (a task's queue wait is measured from it). */
  enqueuedAt?: Date | undefined;
  /** The message's hold on its worker loop's task slots (`work()` only). */
  held?: HeldMessage;
}

/**
 * A task message's settlement; a retry notes the attempt that failed (a pack re-sends it so), and
 * a task deferred by flow control the refusals so far (`deferrals`: a pack re-sends it with them).
 */
export type TaskSettlement =
  | Exclude<SettlementAction, { action: 'retry' }>
  | (Extract<SettlementAction, { action: 'retry' }> & { attempt?: number; deferrals?: number });

/** A settlement without the engine's own notes, as hosts and transports take it. */
export function publicSettlement(settlement: TaskSettlement): SettlementAction {
  if (settlement.action !== 'retry') return settlement;
  const { action, delayMs, reason } = settlement;
  return reason === undefined ? { action, delayMs } : { action, delayMs, reason };
}
