/**
 * Every message the engine processes enters here: decoded (what is not a Switchyard envelope is
 * dead-lettered), routed to the stage, task or pack runner, and — when the store or a transport
 * fails under it — released for redelivery with backoff, unless the store refused the message's
 * own values as input (dead-lettered: no redelivery could succeed).
 */
import { decodeEnvelope, type Envelope } from '../envelope.js';
import { isSwitchyardError, toErrorInfo } from '../errors.js';
import { parseTaskId } from '../ids.js';
import type { SettlementAction } from '../transport.js';
import type { EngineContext } from './context.js';
import { type InboundMessage, publicSettlement } from './inbound.js';
import { backoffDelay } from './retry.js';
import type { StageRunner } from './stages/stage-runner.js';
import type { AbortGroup } from './tasks/handler.js';
import type { PackRunner } from './tasks/pack-runner.js';
import type { TaskRunner } from './tasks/task-runner.js';

export interface DispatcherOptions {
  ctx: EngineContext;
  stages: StageRunner;
  tasks: TaskRunner;
  packs: PackRunner;
}

export class Dispatcher {
  private readonly ctx: EngineContext;
  private readonly stages: StageRunner;
  private readonly tasks: TaskRunner;
  private readonly packs: PackRunner;

  constructor(options: DispatcherOptions) {
    this.ctx = options.ctx;
    this.stages = options.stages;
    this.tasks = options.tasks;
    this.packs = options.packs;
  }

  /** Processes one message and says how to settle it; never throws. */
  async process(message: InboundMessage, group: AbortGroup): Promise<SettlementAction> {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(message.body);
    } catch (err) {
      const info = toErrorInfo(err);
      this.ctx.logger.warn('dead-lettering a message that is not a Switchyard envelope', {
        reason: info.message,
      });
      return { action: 'deadLetter', reason: 'MalformedMessage', description: info.message };
    }
    // Before anything is awaited: the worker must not ask for more while it thinks this is one task.
    if (envelope.kind === 'tasks') message.held?.holds(envelope.tasks.length);
    try {
      await this.ctx.init();
      switch (envelope.kind) {
        case 'stage':
          return await this.stages.run(envelope, message);
        case 'task': {
          const index = parseTaskId(envelope.taskId)?.index ?? -1;
          return publicSettlement(await this.tasks.run({ envelope, index, message, group }));
        }
        case 'tasks':
          return await this.packs.run(envelope, message, group);
      }
    } catch (err) {
      const info = toErrorInfo(err);
      // A value of this message the store refuses (INVALID_INPUT: text it cannot hold, a number
      // out of its range) is refused again at every delivery: dead-lettered now, with the reason,
      // instead of released for redelivery without end.
      if (isSwitchyardError(err) && err.code === 'INVALID_INPUT') {
        this.ctx.logger.warn('dead-lettering a message whose values the store refuses', {
          jobId: envelope.jobId,
          reason: info.message,
        });
        return { action: 'deadLetter', reason: 'InvalidMessage', description: info.message };
      }
      // The store or transport failed under us: release the message, it comes back.
      this.ctx.logger.error('message processing failed; releasing it for redelivery', {
        jobId: envelope.jobId,
        error: info.message,
      });
      return {
        action: 'retry',
        delayMs: backoffDelay(this.ctx.settings.retry, message.deliveryCount),
        reason: info.message,
      };
    }
  }
}
