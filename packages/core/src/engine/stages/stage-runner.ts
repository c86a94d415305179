/**
 * A stage message: start the stage and fan it out (or, past the last stage, finish the job). A
 * fan-out that cannot succeed fails the job; a store or transport failure is left to redelivery.
 */

import { ROOT_CONTEXT, type Span, trace } from '@opentelemetry/api';
import type { StageEnvelope } from '../../envelope.js';
import { isSwitchyardError, toErrorInfo } from '../../errors.js';
import { FINISHED_STATUSES } from '../../operations/statuses.js';
import { SPAN } from '../../telemetry/attributes.js';
import { stageSpan } from '../../telemetry/steps.js';
import type { SettlementAction } from '../../transport.js';
import type { EngineContext } from '../context.js';
import { DEFAULTS } from '../defaults.js';
import type { InboundMessage } from '../inbound.js';
import { completionOf, type StageAdvance } from './advance.js';
import { fanOut, UserCodeError } from './fan-out.js';
import { finalize } from './finalize.js';
import type { TaskWindow } from './task-window.js';

export class StageRunner {
  constructor(
    private readonly ctx: EngineContext,
    private readonly advance: StageAdvance,
    private readonly window: TaskWindow,
  ) {}

  run(envelope: StageEnvelope, message: InboundMessage): Promise<SettlementAction> {
    return this.ctx.telemetry.inSpan(stageSpan(envelope), (span) =>
      this.process(envelope, message, span),
    );
  }

  private async process(
    envelope: StageEnvelope,
    message: InboundMessage,
    span: Span,
  ): Promise<SettlementAction> {
    const { store, directory } = this.ctx;
    const job = await store.getJob(envelope.jobId);
    if (!job)
      return {
        action: 'deadLetter',
        reason: 'JobNotFound',
        description: `job ${envelope.jobId} does not exist`,
      };
    if (FINISHED_STATUSES.has(job.status)) return { action: 'complete' };
    const definition = directory.definition(job.name);
    if (!definition)
      return {
        action: 'deadLetter',
        reason: 'UnknownJob',
        description: `job "${job.name}" is not defined in this worker`,
      };
    const traced = trace.setSpan(ROOT_CONTEXT, span);
    this.ctx.telemetry.rememberJob(job.id, envelope.stage, traced);
    if (envelope.stage >= job.stageCount) {
      span.updateName(SPAN.finalize);
      return finalize(this.ctx, { job, definition, message });
    }

    const stageDef = definition.stages[envelope.stage]!;
    const started = await store.startStage(job.id, envelope.stage, stageDef.name);
    if (
      started.job.currentStage !== envelope.stage ||
      FINISHED_STATUSES.has(started.job.status) ||
      !started.stage
    ) {
      // A stale duplicate (the job moved on) or a message that raced ahead: nothing to do.
      return { action: 'complete' };
    }
    const stage = started.stage;
    if (stage.status === 'complete') {
      await this.advance.onStageComplete(completionOf(stage));
    } else if (stage.status === 'fanning_out') {
      try {
        await fanOut(this.ctx, {
          job: started.job,
          stage: stage.index,
          definition: stageDef,
          advance: this.advance,
          window: this.window,
          trace: traced,
        });
      } catch (err) {
        // A fan-out that cannot succeed (an input JSON cannot carry, or user code that keeps
        // throwing) fails the job instead of being redelivered forever. Store and transport
        // failures are never the job's fault: redelivery retries them.
        const permanent = isSwitchyardError(err) && err.code === 'NOT_SERIALIZABLE';
        const userFailure =
          err instanceof UserCodeError && message.deliveryCount >= DEFAULTS.maxStageDeliveries;
        if (!permanent && !userFailure) throw err;
        const info = toErrorInfo(err instanceof UserCodeError ? err.cause : err);
        await directory.finish(
          job.id,
          {
            status: 'failed',
            error: {
              ...info,
              message: `fan-out of stage "${stageDef.name}" failed: ${info.message}`,
            },
          },
          job.transport,
        );
      }
    }
    // A sealed stage was sealed by a worker that had sent every open task's message first, so a
    // redelivered stage message has nothing to add: a task message lost since is the
    // reconciler's (`task-message-lost`).
    return { action: 'complete' };
  }
}
