/**
 * A pack (`batching.packTasks`): its tasks run concurrently, each exactly as if it had come
 * alone, and the pack is settled once all are recorded. A task that must be retried or
 * dead-lettered is split out into a message of its own: a retry keeps its backoff as the
 * message's delay and counts the attempts so far; a dead-letter is noted in the envelope and
 * settled without running again. On a transport claiming task rows, a retried task's row is made
 * due again after its backoff instead (the store counts its attempts), and a poisoned task is
 * dead-lettered at once, with the body its split-out message would have had.
 */

import type { Context } from '@opentelemetry/api';
import {
  type EnvelopeTrace,
  encodeEnvelope,
  type TaskEnvelope,
  type TasksEnvelope,
} from '../../envelope.js';
import { taskId as makeTaskId } from '../../ids.js';
import type { Priority } from '../../priority.js';
import type { TaskClaim } from '../../store.js';
import { contextFrom } from '../../telemetry/trace-context.js';
import type {
  OutgoingMessage,
  SettlementAction,
  TaskRowDeadLetter,
  TaskRowRetry,
} from '../../transport.js';
import { type Barrier, claimRef } from '../barrier.js';
import { sendBatched } from '../batching.js';
import type { EngineContext } from '../context.js';
import type { InboundMessage, TaskSettlement } from '../inbound.js';
import type { JobInfo } from '../job-directory.js';
import { laneOf, routeOf } from '../outbox.js';
import type { StageAdvance } from '../stages/advance.js';
import type { FlowGate } from './flow-gate.js';
import type { AbortGroup } from './handler.js';
import { type PackTurn, PackTurns } from './slot-turn.js';
import type { TaskRun, TaskRunner } from './task-runner.js';

/**
 * The claim of every task of an admitted pack, shared: a claim is read, never changed, and the
 * runner takes a task's id from its envelope.
 */
const PACK_ADMITTED: TaskClaim = Object.freeze({ taskId: '', outcome: 'run', attempt: 1 });

export interface PackRunnerOptions {
  ctx: EngineContext;
  barrier: Barrier;
  advance: StageAdvance;
  tasks: TaskRunner;
  /** Present when some task declares a flow limit. */
  gate?: FlowGate | undefined;
}

export class PackRunner {
  private readonly ctx: EngineContext;
  private readonly barrier: Barrier;
  private readonly advance: StageAdvance;
  private readonly tasks: TaskRunner;
  private readonly gate: FlowGate | undefined;

  constructor(options: PackRunnerOptions) {
    this.ctx = options.ctx;
    this.barrier = options.barrier;
    this.advance = options.advance;
    this.tasks = options.tasks;
    this.gate = options.gate;
  }

  async run(
    envelope: TasksEnvelope,
    message: InboundMessage,
    group: AbortGroup,
  ): Promise<SettlementAction> {
    const job = await this.ctx.directory.info(envelope.jobId);
    if (!job)
      return {
        action: 'deadLetter',
        reason: 'JobNotFound',
        description: `job ${envelope.jobId} does not exist`,
      };
    const { jobId, stage } = envelope;
    const singles = envelope.tasks.map((t): TaskEnvelope => {
      const taskId = makeTaskId(jobId, stage, t.index);
      return 'input' in t
        ? { v: 1, kind: 'task', jobId, stage, taskId, input: t.input }
        : { v: 1, kind: 'task', jobId, stage, taskId };
    });
    const claimed = await this.claim({ job, envelope, singles, message });
    if (!claimed) return { action: 'complete' };
    const { claims, asPack } = claimed;
    // One context for the pack: its tasks' spans are children of the span that sent it.
    const trace = contextFrom(envelope);
    if (envelope.traceparent !== undefined) this.ctx.telemetry.rememberJob(jobId, stage, trace);
    const outcomes = await this.runTasks({
      envelope,
      singles,
      message,
      group,
      claims,
      asPack,
      trace,
    });
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    const target = this.ctx.transportOf(job.transport);
    // Task-row claims: a failed attempt's task is due again in its row, and a poisoned one is
    // dead-lettered at once; neither is sent.
    const rows = target.rowClaims ? target.transport : undefined;
    const split: OutgoingMessage[] = [];
    const rowRetries: TaskRowRetry[] = [];
    const rowLetters: TaskRowDeadLetter[] = [];
    outcomes.forEach((o, i) => {
      const settlement = (o as PromiseFulfilledResult<TaskSettlement>).value;
      if (settlement.action === 'complete') return;
      const waits = settlement.action === 'retry' && settlement.deferrals !== undefined;
      if (rows?.retryTaskRows && settlement.action === 'retry' && !waits) {
        rowRetries.push(rowRetry(envelope, envelope.tasks[i]!.index, settlement.delayMs, job));
        return;
      }
      const out = splitOut(singles[i]!, settlement, {
        deliveryCount: message.deliveryCount,
        trace: envelope,
        priority: job.priority,
      });
      if (rows?.deadLetterTaskRows && settlement.action === 'deadLetter')
        rowLetters.push({
          body: out.body,
          messageId: out.messageId!,
          reason: settlement.reason,
          description: settlement.description ?? '',
          ...laneOf(job.priority),
        });
      else split.push(out);
    });
    if (rowRetries.length > 0) await rows!.retryTaskRows!(rowRetries);
    if (rowLetters.length > 0) await rows!.deadLetterTaskRows!(rowLetters);
    if (split.length > 0) await sendBatched(target, split);
    return { action: 'complete' };
  }

  /**
   * Runs the pack's tasks, each as it gets a handler slot ({@link PackTurns}); tasks under a flow
   * limit take their slots through the gate, all started at once. Settled, not awaited in turn: a
   * store failure in one task must not settle the pack while others still run.
   */
  private async runTasks(pack: PackRun): Promise<PromiseSettledResult<TaskSettlement>[]> {
    const { envelope, singles, message, group, claims, asPack, trace } = pack;
    const runOf = (i: number, slotTaken: boolean): TaskRun => ({
      envelope: singles[i]!,
      index: envelope.tasks[i]!.index,
      message,
      group,
      claim: claims[i],
      packAdmitted: asPack,
      inPack: true,
      trace,
      slotTaken,
    });
    const held = message.held;
    if (!held || claims.some((c) => c === undefined))
      return Promise.allSettled(singles.map((_, i) => this.tasks.run(runOf(i, false))));
    const turns = new PackTurns({ held, jobId: envelope.jobId, group, cancels: this.ctx.cancels });
    const started: Promise<PromiseSettledResult<TaskSettlement>>[] = [];
    try {
      for (let i = 0; i < singles.length; i++) {
        const claim = claims[i]!;
        // A task that will not run (finished, its job gone) takes no slot.
        if (claim.outcome !== 'run') {
          started.push(settle(this.tasks.run(runOf(i, false))));
          continue;
        }
        const taking = turns.take();
        const turn = typeof taking === 'string' ? taking : await taking;
        started.push(
          turn === 'start'
            ? settle(this.tasks.run(runOf(i, true)))
            : Promise.resolve({ status: 'fulfilled', value: unstarted(turn, claim) }),
        );
      }
    } finally {
      turns.end();
    }
    return Promise.all(started);
  }

  /**
   * The pack's claims, one per task, and whether they were made for the whole pack; `undefined`
   * when the pack is a late duplicate, to acknowledge. The first delivery of a fan-out's own pack
   * is admitted with one check for the whole pack: its tasks were inserted just before it was
   * sent. A resumed fan-out's pack, a redelivery and a task whose input stayed in its row are
   * claimed task by task. A task with a flow limit is admitted by the gate, then claimed, each on
   * its own (no claim here).
   */
  private async claim({
    job,
    envelope,
    singles,
    message,
  }: Pack): Promise<{ claims: (TaskClaim | undefined)[]; asPack: boolean } | undefined> {
    const { jobId, stage } = envelope;
    if (this.gate?.governs(job.name, stage) === true)
      return { claims: singles.map(() => undefined), asPack: false };
    const asPack =
      this.barrier.admitsPacks &&
      message.deliveryCount === 1 &&
      envelope.resumed !== true &&
      envelope.tasks.every((t) => 'input' in t);
    if (!asPack) {
      // One claim batch entry for the pack, not a promise per task.
      const claims = await this.barrier.claimAll(
        singles.map((t, i) => claimRef(t, envelope.tasks[i]!.index, message)),
      );
      return { claims, asPack };
    }
    if (!(await this.barrier.admitPack({ jobId, stage, tasks: singles.length }))) {
      // The job is not running or the stage is complete (this pack is a late duplicate): make
      // sure a completed stage's advance was not lost, as a terminal task's duplicate does.
      await this.advance.recheck(jobId, stage);
      return undefined;
    }
    return { claims: singles.map(() => PACK_ADMITTED), asPack };
  }
}

/** A claimed pack, ready to run its tasks. */
interface PackRun {
  envelope: TasksEnvelope;
  singles: TaskEnvelope[];
  message: InboundMessage;
  group: AbortGroup;
  /** One per task; `undefined` for a task the flow gate admits and claims itself. */
  claims: (TaskClaim | undefined)[];
  asPack: boolean;
  trace: Context;
}

/** A task's run as the settled result `Promise.allSettled` would give, its rejection handled now. */
function settle(running: Promise<TaskSettlement>): Promise<PromiseSettledResult<TaskSettlement>> {
  return running.then(fulfilled, rejected);
}
const fulfilled = (value: TaskSettlement): PromiseSettledResult<TaskSettlement> => ({
  status: 'fulfilled',
  value,
});
const rejected = (reason: unknown): PromiseSettledResult<TaskSettlement> => ({
  status: 'rejected',
  reason,
});

/**
 * The settlement of a claimed task released before it started: a stopped worker's task comes
 * back with its attempt not counted; a cancelled job's task is done.
 */
function unstarted(turn: Exclude<PackTurn, 'start'>, claim: TaskClaim): TaskSettlement {
  return turn === 'cancelled'
    ? { action: 'complete' }
    : {
        action: 'retry',
        delayMs: 0,
        reason: 'worker shutting down',
        attempt: (claim.attempt ?? 1) - 1,
      };
}

/** A received pack, its tasks as single task envelopes. */
interface Pack {
  job: JobInfo;
  envelope: TasksEnvelope;
  singles: TaskEnvelope[];
  message: InboundMessage;
}

/** A pack's task whose row is due again after `delayMs`, in the job's lane, with its trace. */
function rowRetry(pack: TasksEnvelope, index: number, delayMs: number, job: JobInfo): TaskRowRetry {
  const retry: TaskRowRetry = { jobId: pack.jobId, stage: pack.stage, index, delayMs };
  if (job.priority !== undefined) retry.priority = job.priority;
  if (pack.traceparent !== undefined) {
    retry.traceparent = pack.traceparent;
    if (pack.tracestate !== undefined) retry.tracestate = pack.tracestate;
  }
  return retry;
}

/**
 * A pack's task that must be retried, wait for flow control (a retry with `deferrals`), or be
 * dead-lettered, as a message of its own.
 */
function splitOut(
  task: TaskEnvelope,
  settlement: Exclude<TaskSettlement, { action: 'complete' }>,
  from: {
    /** The pack's delivery count. */
    deliveryCount: number;
    /** The pack's trace context, carried on. */
    trace: EnvelopeTrace;
    /** The job's priority: the message stays in the pack's lane. */
    priority: Priority | undefined;
  },
): OutgoingMessage {
  const { deliveryCount, trace } = from;
  const deferrals = settlement.action === 'retry' ? settlement.deferrals : undefined;
  const body: TaskEnvelope =
    settlement.action === 'retry'
      ? {
          ...task,
          attempts: settlement.attempt ?? deliveryCount,
          ...(deferrals === undefined ? {} : { deferrals }),
        }
      : {
          ...task,
          deadLetter: { reason: settlement.reason, description: settlement.description ?? '' },
        };
  if (trace.traceparent !== undefined) {
    body.traceparent = trace.traceparent;
    if (trace.tracestate !== undefined) body.tracestate = trace.tracestate;
  }
  return {
    body: encodeEnvelope(body),
    // A waiting task is re-sent many times from first deliveries: its ids count its deferrals.
    messageId:
      deferrals === undefined ? `${body.taskId}#${deliveryCount}` : `${body.taskId}~${deferrals}`,
    ...(body.traceparent === undefined ? {} : { traceparent: body.traceparent }),
    ...routeOf(body.jobId, from.priority),
    ...(settlement.action === 'retry' && settlement.delayMs > 0
      ? { delayMs: settlement.delayMs }
      : {}),
  };
}
