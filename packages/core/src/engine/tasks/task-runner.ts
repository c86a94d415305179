/**
 * One task message, step by step: claim the task (or take the claim its pack made), resolve its
 * definition and validate its input, wait for a slot and run the handler, then record the
 * outcome — succeeded, retried with backoff, or poisoned — through the barrier.
 */
import type { Context } from '@opentelemetry/api';
import type { TaskDefinition } from '../../define.js';
import type { TaskEnvelope } from '../../envelope.js';
import { type ErrorInfo, toErrorInfo } from '../../errors.js';
import type { ClaimRef, TaskClaim, TaskRef } from '../../store.js';
import { observeTask, type TaskObservation } from '../../telemetry/task-observation.js';
import type { Barrier } from '../barrier.js';
import type { EngineContext } from '../context.js';
import type { InboundMessage, TaskSettlement } from '../inbound.js';
import type { JobInfo } from '../job-directory.js';
import { backoffDelay, resolveRetry } from '../retry.js';
import type { StageAdvance } from '../stages/advance.js';
import { validate } from '../validate.js';
import { type AbortGroup, type HandlerOutcome, runHandler } from './handler.js';

/** One task to run, as the dispatcher or a pack hands it over. */
export interface TaskRun {
  envelope: TaskEnvelope;
  /** The task's index in its stage. */
  index: number;
  message: InboundMessage;
  /** Aborted when the worker shuts down. */
  group: AbortGroup;
  /** The task's claim, when the caller made it (a pack claims its tasks together). */
  claim?: TaskClaim;
  /** Admitted with its pack, unchecked: an outcome that does not apply asks why afterwards. */
  packAdmitted?: boolean;
  /** The trace context its message carried, when the caller extracted it (a pack's, once). */
  trace?: Context;
}

/** An attempt as the store records it with the outcome or the retry. */
type Attempt = TaskRef & { attempt: number; startedAt: Date };

/** A task ready to run: its definition and its validated input. */
type Prepared = { task: TaskDefinition; input: unknown } | { settlement: TaskSettlement };

/** Why a task is poisoned. */
interface Failure {
  error: ErrorInfo;
  reason: string;
  timedOut?: boolean;
}

/** Task statuses no delivery changes any more. */
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** Most characters of a dead-letter's description. */
const DESCRIPTION_MAX = 1000;

export class TaskRunner {
  constructor(
    private readonly ctx: EngineContext,
    private readonly barrier: Barrier,
    private readonly advance: StageAdvance,
  ) {}

  /** Runs one task; a settlement other than `complete` notes the attempt it ended. */
  async run(run: TaskRun): Promise<TaskSettlement> {
    if (run.envelope.deadLetter) {
      // Split out of a pack to be dead-lettered: the failure is recorded already — unless the
      // task was re-opened since (a replay of this very message), which runs it again.
      const { deadLetter, ...envelope } = run.envelope;
      const task = await this.ctx.store.getTask(envelope.taskId);
      if (task?.status !== 'pending') {
        const { reason, description = '' } = deadLetter;
        return { action: 'deadLetter', reason, description };
      }
      run = { ...run, envelope };
    }
    const { envelope } = run;
    const claim =
      run.claim ?? (await this.barrier.claim(claimRef(envelope, run.index, run.message)));
    if (claim.outcome !== 'run') return this.notRun(envelope, claim.outcome);
    const attempt: Attempt = {
      jobId: envelope.jobId,
      stage: envelope.stage,
      index: run.index,
      taskId: envelope.taskId,
      attempt: claim.attempt ?? 1,
      startedAt: new Date(),
    };
    const observed = observeTask(this.ctx.telemetry, run, attempt);
    try {
      const settlement = await this.attempt(run, claim, attempt, observed);
      observed.end(settlement);
      return settlement;
    } catch (err) {
      observed.fail(err);
      throw err;
    }
  }

  /** Prepares and runs a claimed attempt and records its outcome. */
  private async attempt(
    run: TaskRun,
    claim: TaskClaim,
    attempt: Attempt,
    observed: TaskObservation,
  ): Promise<TaskSettlement> {
    const { envelope } = run;
    // Synchronous when the job is known and its schema validates synchronously: this runs per
    // task, and an await costs a promise and a microtask turn even when the value is there.
    const preparing = this.prepare(run, claim, attempt, observed);
    const prepared = preparing instanceof Promise ? await preparing : preparing;
    if ('settlement' in prepared) return prepared.settlement;
    const held = run.message.held;
    const turn = held?.handlerStarting();
    if (held && turn) {
      await turn;
      // Stopped while waiting for a slot: release the task unstarted (its attempt not counted).
      if (run.group.signal.aborted) {
        held.handlerEnded();
        const reason = 'worker shutting down';
        return { action: 'retry', delayMs: 0, reason, attempt: attempt.attempt - 1 };
      }
    }
    const outcome = await observed.runHandler(() =>
      runHandler(prepared.task.handler.bind(prepared.task), prepared.input, {
        jobId: envelope.jobId,
        taskId: envelope.taskId,
        stage: envelope.stage,
        index: run.index,
        attempt: attempt.attempt,
        logger: this.ctx.logger,
        timeoutMs: prepared.task.timeoutMs,
        shutdown: run.group,
      }),
    );
    observed.handlerEnded(outcome);
    held?.handlerEnded();
    if (!outcome.ok) return this.recordFailure(run, attempt, prepared.task, outcome);
    const applied = await this.barrier.complete({
      ...attempt,
      status: 'succeeded',
      result: outcome.result,
    });
    return applied || !run.packAdmitted ? { action: 'complete' } : this.whyUnapplied(run);
  }

  /** The task's definition and validated input, or the settlement when it has none. */
  private prepare(
    run: TaskRun,
    claim: TaskClaim,
    attempt: Attempt,
    observed: TaskObservation,
  ): Prepared | Promise<Prepared> {
    const known = this.ctx.directory.info(run.envelope.jobId);
    return known instanceof Promise
      ? known.then((job) => this.prepareFor(job, run, claim, attempt, observed))
      : this.prepareFor(known, run, claim, attempt, observed);
  }

  private prepareFor(
    job: JobInfo | undefined,
    run: TaskRun,
    claim: TaskClaim,
    attempt: Attempt,
    observed: TaskObservation,
  ): Prepared | Promise<Prepared> {
    const { envelope } = run;
    if (job) observed.job(job, run.message.enqueuedAt);
    const task = job
      ? this.ctx.directory.definition(job.name)?.stages[envelope.stage]?.task
      : undefined;
    if (!job || !task) {
      const error: ErrorInfo = {
        name: 'SwitchyardError',
        code: 'UNKNOWN_JOB',
        message: `no task definition for stage ${envelope.stage} of job "${job?.name}"`,
      };
      observed.failed(error);
      return this.poisoned(run, attempt, { error, reason: 'UnknownTask' });
    }
    const input: unknown = 'input' in envelope ? envelope.input : claim.input;
    if (!task.input) return { task, input };
    const invalid = (err: unknown) => {
      const error = toErrorInfo(err);
      observed.failed(error);
      return this.poisoned(run, attempt, { error, reason: 'InvalidInput' });
    };
    try {
      const checked = validate(task.input, input, 'input');
      return checked instanceof Promise
        ? checked.then((valid): Prepared => ({ task, input: valid }), invalid)
        : { task, input: checked };
    } catch (err) {
      return invalid(err);
    }
  }

  private async poisoned(run: TaskRun, attempt: Attempt, failure: Failure): Promise<Prepared> {
    return { settlement: await this.poison(run, attempt, failure) };
  }

  /** Records a failed attempt: retried with backoff, or poisoned after its last attempt. */
  private async recordFailure(
    run: TaskRun,
    attempt: Attempt,
    task: TaskDefinition,
    outcome: Extract<HandlerOutcome, { ok: false }>,
  ): Promise<TaskSettlement> {
    if (outcome.shutdown)
      return {
        action: 'retry',
        delayMs: 0,
        reason: 'worker shutting down',
        attempt: attempt.attempt,
      };
    const retry = resolveRetry(this.ctx.settings.retry, task.retry);
    const { deliveryCount, maxDeliveries } = run.message;
    const lastDelivery = maxDeliveries !== undefined && deliveryCount >= maxDeliveries;
    if (attempt.attempt >= retry.maxAttempts || outcome.permanent || lastDelivery) {
      const reason = outcome.permanent
        ? 'NotSerializable'
        : lastDelivery && attempt.attempt < retry.maxAttempts
          ? 'MaxDeliveriesExceeded'
          : 'MaxAttemptsExceeded';
      return this.poison(run, attempt, {
        error: outcome.error,
        reason,
        timedOut: outcome.timedOut,
      });
    }
    await this.barrier.retry({
      ...attempt,
      error: outcome.error,
      ...(outcome.timedOut ? { timedOut: true } : {}),
    });
    return {
      action: 'retry',
      delayMs: backoffDelay(retry, attempt.attempt),
      reason: outcome.error.message,
      attempt: attempt.attempt,
    };
  }

  /**
   * Poisons a task: records the failure (the barrier counts it) and dead-letters its message. A
   * delivery whose failure did not apply because another delivery of the task (a duplicate, a
   * redelivery) finished it first is acknowledged instead: the task keeps one dead letter, and a
   * cancelled job's task none.
   */
  private async poison(run: TaskRun, attempt: Attempt, failure: Failure): Promise<TaskSettlement> {
    const applied = await this.barrier.complete({
      ...attempt,
      status: 'failed',
      error: failure.error,
      ...(failure.timedOut ? { timedOut: true } : {}),
    });
    if (!applied && run.packAdmitted) return this.whyUnapplied(run);
    if (!applied && FINISHED.has((await this.ctx.store.getTask(attempt.taskId))?.status ?? ''))
      return { action: 'complete' };
    const description = `task ${attempt.taskId} failed after ${attempt.attempt} attempt(s): ${failure.error.message}`;
    return {
      action: 'deadLetter',
      reason: failure.reason,
      description: description.slice(0, DESCRIPTION_MAX),
    };
  }

  /**
   * Why a claimed task must not run, as its message's settlement: dead-lettered when it (or its
   * job) does not exist; otherwise acknowledged.
   */
  async notRun(
    envelope: TaskEnvelope,
    outcome: Exclude<TaskClaim['outcome'], 'run'>,
  ): Promise<TaskSettlement> {
    switch (outcome) {
      case 'missing': {
        const job = await this.ctx.store.getJob(envelope.jobId);
        return job
          ? {
              action: 'deadLetter',
              reason: 'TaskNotFound',
              description: `task ${envelope.taskId} does not exist in job ${envelope.jobId}`,
            }
          : {
              action: 'deadLetter',
              reason: 'JobNotFound',
              description: `job ${envelope.jobId} does not exist`,
            };
      }
      case 'terminal':
        // A duplicate or a redelivery after a crash: the result is recorded already. Make sure the
        // stage's advance was not lost with the crash (cheap and idempotent).
        await this.advance.recheck(envelope.jobId, envelope.stage);
        return { action: 'complete' };
      case 'job-inactive':
        return { action: 'complete' };
    }
  }

  /**
   * A pack-admitted task ran but its outcome did not apply: it was finished already (a
   * duplicate) or never existed (a foreign pack). The check a claim would have made, made now.
   */
  private async whyUnapplied(run: TaskRun): Promise<TaskSettlement> {
    const claim = await this.barrier.claim(claimRef(run.envelope, run.index, run.message));
    return claim.outcome === 'run'
      ? { action: 'complete' }
      : this.notRun(run.envelope, claim.outcome);
  }
}

/**
 * What to claim for one task message. The first delivery of a fan-out's own message is admitted
 * (nothing written); any other delivery is claimed, and counts attempts the earlier deliveries
 * may not have recorded. (A plain fixed-shape object: this runs once per task.)
 */
export function claimRef(envelope: TaskEnvelope, index: number, message: InboundMessage): ClaimRef {
  return {
    jobId: envelope.jobId,
    stage: envelope.stage,
    index,
    taskId: envelope.taskId,
    minAttempt: (envelope.attempts ?? 0) + message.deliveryCount,
    admitOnly: message.deliveryCount === 1 && envelope.attempts === undefined,
    withInput: !('input' in envelope),
  };
}
