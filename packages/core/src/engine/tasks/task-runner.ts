/**
 * One task message, step by step: claim the task (or take the claim its pack made), resolve its
 * definition and validate its input, wait for a slot and run the handler, then record the
 * outcome — succeeded, retried with backoff, or poisoned — through the barrier.
 */
import type { Context } from '@opentelemetry/api';
import type { TaskDefinition } from '../../define.js';
import type { TaskEnvelope } from '../../envelope.js';
import { type ErrorInfo, toErrorInfo } from '../../errors.js';
import { FINISHED_STATUSES } from '../../operations/statuses.js';
import type { TaskClaim, TaskRef } from '../../store.js';
import { observeTask, type TaskObservation } from '../../telemetry/task-observation.js';
import { type Barrier, claimRef } from '../barrier.js';
import type { EngineContext } from '../context.js';
import type { InboundMessage, TaskSettlement } from '../inbound.js';
import type { JobInfo } from '../job-directory.js';
import { backoffDelay, resolveRetry } from '../retry.js';
import type { StageAdvance } from '../stages/advance.js';
import { validate } from '../validate.js';
import type { HeldMessage } from '../worker/slots.js';
import { type FlowGate, type FlowPass, type Gate, OPEN } from './flow-gate.js';
import { type AbortGroup, type HandlerOutcome, runHandler } from './handler.js';
import { type NotRunDeps, notRun } from './not-run.js';
import { waitForTurn } from './slot-turn.js';

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
  /** One task of a pack: a deferral is returned for the pack to split out, not sent here. */
  inPack?: boolean;
  /** The trace context its message carried, when the caller extracted it (a pack's, once). */
  trace?: Context;
  /** Its pack took its handler slot already: it starts without waiting, and gives it back. */
  slotTaken?: boolean;
}

/** An attempt as the store records it with the outcome or the retry. */
type Attempt = TaskRef & { attempt: number; startedAt: Date };

/**
 * A claimed attempt, from its preparation to its outcome, with the slots it holds. One object per
 * attempt, made once: every in-flight task keeps it on the heap until the barrier's group commit.
 */
interface Execution {
  run: TaskRun;
  claim: TaskClaim;
  attempt: Attempt;
  observed: TaskObservation;
  held: HeldMessage | undefined;
  pass: FlowPass | undefined;
}

/** A task ready to run: its definition and its validated input. */
type Ready = { task: TaskDefinition; input: unknown };

/** A task ready to run, or the settlement of one that cannot. */
type Prepared = Ready | { settlement: TaskSettlement };

/** Why a task is poisoned. */
interface Failure {
  error: ErrorInfo;
  reason: string;
  timedOut?: boolean;
}

/** The settlement of most tasks, shared: settlements are read, never changed. */
const COMPLETE: TaskSettlement = Object.freeze({ action: 'complete' });

/** Most characters of a dead-letter's description. */
const DESCRIPTION_MAX = 1000;

export class TaskRunner {
  private readonly barrier: Barrier;
  private readonly advance: StageAdvance;
  /** Present when some task declares a flow limit (`concurrency`, `rateLimit`). */
  private readonly gate: FlowGate | undefined;
  private readonly deps: NotRunDeps;

  constructor(
    private readonly ctx: EngineContext,
    parts: { barrier: Barrier; advance: StageAdvance; gate?: FlowGate | undefined },
  ) {
    this.barrier = parts.barrier;
    this.advance = parts.advance;
    this.gate = parts.gate;
    this.deps = { store: ctx.store, advance: this.advance };
  }

  /**
   * Runs one task; a settlement other than `complete` notes the attempt it ended. Not itself
   * async: most tasks (no dead-letter note, no flow limit) go straight to {@link claimed}, without
   * a frame and a promise of their own.
   */
  run(run: TaskRun): Promise<TaskSettlement> {
    if (run.envelope.deadLetter) return this.noted(run);
    if (run.claim || !this.gate) return this.claimed(run, OPEN);
    return this.gated(run, this.gate);
  }

  /**
   * A task split out of a pack to be dead-lettered: its failure is recorded already — unless the
   * task was re-opened since (a replay of this very message), which runs it again.
   */
  private async noted(run: TaskRun): Promise<TaskSettlement> {
    const { deadLetter, ...envelope } = run.envelope;
    const task = await this.ctx.store.getTask(envelope.taskId);
    if (task?.status !== 'pending') {
      const { reason, description = '' } = deadLetter!;
      return { action: 'deadLetter', reason, description };
    }
    return this.run({ ...run, envelope });
  }

  /** A task with a flow limit: the gate comes before the claim, so one that must wait has nothing recorded. */
  private async gated(run: TaskRun, flow: FlowGate): Promise<TaskSettlement> {
    const gate = await flow.enter(run);
    if (gate.kind === 'deferred') return gate.settlement;
    const pass = gate.kind === 'admitted' ? gate.pass : undefined;
    try {
      return await this.claimed(run, gate);
    } finally {
      pass?.release();
    }
  }

  /** Claims the task (or takes the claim its pack made) and runs the attempt. */
  private async claimed(run: TaskRun, gate: Gate): Promise<TaskSettlement> {
    const { envelope } = run;
    const claim =
      run.claim ?? (await this.barrier.claim(claimRef(envelope, run.index, run.message)));
    if (claim.outcome !== 'run') return notRun(envelope, claim.outcome, this.deps);
    // Re-opened between the gate's look and the claim: it must not run unadmitted.
    if (gate.kind === 'not-runnable' && this.gate)
      return this.gate.deferClaimed(run, claim.attempt ?? 1);
    const attempt: Attempt = {
      jobId: envelope.jobId,
      stage: envelope.stage,
      index: run.index,
      taskId: envelope.taskId,
      attempt: claim.attempt ?? 1,
      startedAt: new Date(),
    };
    const observed = observeTask(this.ctx.telemetry, run, attempt);
    const pass = gate.kind === 'admitted' ? gate.pass : undefined;
    // An admitted task took its worker slot before asking for its key slot.
    const held = pass?.holdsWorkerSlot ? undefined : run.message.held;
    const execution: Execution = { run, claim, attempt, observed, held, pass };
    let prepared: Prepared;
    try {
      // Synchronous when the job is known and its schema validates synchronously.
      const preparing = this.prepare(execution);
      prepared = preparing instanceof Promise ? await preparing : preparing;
      if (!('settlement' in prepared) && gate.kind === 'invalid') {
        observed.failed(gate.error);
        const failure = { error: gate.error, reason: 'InvalidFlowKey' };
        prepared = { settlement: await this.poison(run, attempt, failure) };
      }
      // Waits when the message's tasks outnumber the free slots.
      const turn =
        'settlement' in prepared || run.slotTaken
          ? undefined
          : held?.handlerStarting(attempt.jobId);
      if (turn) {
        const { jobId, attempt: n } = attempt;
        const cancels = this.ctx.cancels;
        const waited = await waitForTurn(turn, {
          held: held!,
          jobId,
          attempt: n,
          group: run.group,
          cancels,
        });
        if (waited) prepared = { settlement: waited };
      }
    } catch (err) {
      if (run.slotTaken) held?.handlerEnded();
      observed.fail(err);
      throw err;
    }
    if ('settlement' in prepared) {
      if (run.slotTaken) held?.handlerEnded();
      observed.end(prepared.settlement);
      return prepared.settlement;
    }
    // Returned, not awaited: this frame ends here, and the attempt's only frame held across the
    // barrier's group commit is execute's — every in-flight task keeps its frames on the heap.
    return this.execute(execution, prepared);
  }

  /** Runs the handler of a prepared attempt and records its outcome, in one frame. */
  private async execute(execution: Execution, prepared: Ready): Promise<TaskSettlement> {
    const { run, attempt, observed, held, pass } = execution;
    const { task } = prepared;
    let settlement: TaskSettlement;
    try {
      // The key slot must still be ours when the handler starts.
      const secured = pass?.secure();
      if (secured !== undefined && secured !== true && !(await secured)) {
        held?.handlerEnded();
        settlement = await this.gate!.deferClaimed(run, attempt.attempt);
      } else {
        const outcome = await observed.runHandler(runHandler, task, prepared.input, {
          jobId: attempt.jobId,
          taskId: attempt.taskId,
          stage: attempt.stage,
          index: attempt.index,
          attempt: attempt.attempt,
          logger: this.ctx.logger,
          timeoutMs: task.timeoutMs,
          shutdown: run.group,
          cancels: this.ctx.cancels,
        });
        observed.handlerEnded(outcome);
        held?.handlerEnded();
        pass?.release();
        if (!outcome.ok) settlement = await this.recordFailure(execution, task, outcome);
        else {
          const applied = await this.barrier.complete({
            jobId: attempt.jobId,
            stage: attempt.stage,
            index: attempt.index,
            taskId: attempt.taskId,
            attempt: attempt.attempt,
            startedAt: attempt.startedAt,
            status: 'succeeded',
            result: outcome.result,
          });
          settlement = applied || !run.packAdmitted ? COMPLETE : await this.whyUnapplied(run);
        }
      }
    } catch (err) {
      observed.fail(err);
      throw err;
    }
    observed.end(settlement);
    return settlement;
  }

  /** The task's definition and validated input, or the settlement when it has none. */
  private prepare(execution: Execution): Prepared | Promise<Prepared> {
    const known = this.ctx.directory.info(execution.run.envelope.jobId);
    return known instanceof Promise
      ? known.then((job) => this.prepareFor(job, execution))
      : this.prepareFor(known, execution);
  }

  private prepareFor(job: JobInfo | undefined, execution: Execution): Prepared | Promise<Prepared> {
    const { run, claim, attempt, observed } = execution;
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

  /**
   * Records a failed attempt: retried with backoff, or poisoned after its last attempt. An attempt
   * its job's cancel aborted is neither: the cancel made the task `cancelled` already, so its
   * message is settled as done.
   */
  private async recordFailure(
    { run, attempt }: Execution,
    task: TaskDefinition,
    outcome: Extract<HandlerOutcome, { ok: false }>,
  ): Promise<TaskSettlement> {
    if (outcome.cancelled) return { action: 'complete' };
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
    const now = applied ? undefined : await this.ctx.store.getTask(attempt.taskId);
    if (now && FINISHED_STATUSES.has(now.status)) return COMPLETE;
    const description = `task ${attempt.taskId} failed after ${attempt.attempt} attempt(s): ${failure.error.message}`;
    return {
      action: 'deadLetter',
      reason: failure.reason,
      description: description.slice(0, DESCRIPTION_MAX),
    };
  }

  /**
   * A task ran but its outcome did not apply: it was finished already (a duplicate, its job
   * cancelled) or, pack-admitted, never existed (a foreign pack). The check a claim would have
   * made, made now.
   */
  private async whyUnapplied(run: TaskRun): Promise<TaskSettlement> {
    const claim = await this.barrier.claim(claimRef(run.envelope, run.index, run.message));
    return claim.outcome === 'run'
      ? { action: 'complete' }
      : notRun(run.envelope, claim.outcome, this.deps);
  }
}
