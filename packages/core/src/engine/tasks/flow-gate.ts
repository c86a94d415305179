/**
 * Flow control, before a task's claim. A task whose definition declares `concurrency` or
 * `rateLimit` first takes a worker slot, then asks the store for its key slot and its rate-limit
 * start, both or neither. Admitted, it runs holding both until its handler ends. Refused, it gives
 * the worker slot back at once and its message is sent again with a delay: a fresh message that
 * carries the task's attempts so far, so waiting uses up neither an attempt nor a delivery (a
 * Service Bus max delivery count, a Storage queue's dequeue count); a pack's task is split out so.
 */
import { randomUUID } from 'node:crypto';
import { MAX_FLOW_KEY_LENGTH, type TaskDefinition } from '../../define.js';
import { encodeEnvelope, type TaskEnvelope } from '../../envelope.js';
import { type ErrorInfo, toErrorInfo, ValidationError } from '../../errors.js';
import type { FlowControlCapability, FlowDecision, SlotRequest, Store } from '../../store.js';
import type { EngineContext } from '../context.js';
import { DEFAULTS } from '../defaults.js';
import type { TaskSettlement } from '../inbound.js';
import type { JobInfo } from '../job-directory.js';
import { routeOf } from '../outbox.js';
import { validate } from '../validate.js';
import type { HeldMessage } from '../worker/slots.js';
import { SlotLeases } from './slot-leases.js';
import type { TaskRun } from './task-runner.js';

/** What the gate decided for one task message. */
export type Gate =
  /** No flow limit applies: claim and run as usual. */
  | { kind: 'open' }
  /** Admitted: the pass holds the worker slot and the key slot until released. */
  | { kind: 'admitted'; pass: FlowPass }
  /** The task may not run (finished, missing, job not running): the claim says why. */
  | { kind: 'not-runnable' }
  /** The input is invalid or a key function failed: the task is poisoned once claimed. */
  | { kind: 'invalid'; error: ErrorInfo }
  /** Refused (or the worker is stopping): the message's settlement, its copy sent if any. */
  | { kind: 'deferred'; settlement: TaskSettlement };

export const OPEN: Gate = { kind: 'open' };

/** An admitted task's worker slot and key slot, given back once (when its handler ends). */
export class FlowPass {
  private released = false;

  constructor(
    private readonly held: HeldMessage | undefined,
    private readonly slot: SlotRequest | undefined,
    private readonly leases: SlotLeases,
  ) {}

  /** The worker slot was taken before the claim: the attempt must not take another. */
  get holdsWorkerSlot(): boolean {
    return this.held !== undefined;
  }

  /**
   * True when the key slot is surely held long enough to start the handler (renewed first if
   * its lease ran low while the task was being claimed); false when it was lost.
   */
  secure(): Promise<boolean> | true {
    return this.slot ? this.leases.secure(this.slot) : true;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.held?.handlerEnded();
    if (this.slot) this.leases.release(this.slot);
  }
}

export class FlowGate {
  private readonly store: Store & FlowControlCapability;
  readonly leases: SlotLeases;
  /** Holder ids: unique per acquisition, this Switchyard's prefix and a counter. */
  private readonly holderPrefix = randomUUID();
  private holders = 0;

  /** A gate when some task of the jobs declares a flow limit (the store offers flow control then). */
  static for(ctx: EngineContext): FlowGate | undefined {
    for (const job of ctx.settings.jobs.values())
      if (job.stages.some((s) => limited(s.task))) return new FlowGate(ctx);
    return undefined;
  }

  private constructor(private readonly ctx: EngineContext) {
    this.store = ctx.store as Store & FlowControlCapability;
    this.leases = new SlotLeases(this.store, ctx.settings.flowControl.slotLeaseMs, ctx.logger);
  }

  /** True when the task of the job's stage declares a flow limit. */
  governs(jobName: string, stage: number): boolean {
    return limited(this.ctx.directory.definition(jobName)?.stages[stage]?.task);
  }

  /** Decides whether the task may start now; `run` holds no claim yet. */
  async enter(run: TaskRun): Promise<Gate> {
    const { envelope, message } = run;
    const job = await this.ctx.directory.info(envelope.jobId);
    const task = job && this.ctx.directory.definition(job.name)?.stages[envelope.stage]?.task;
    if (!job || !task || !limited(task)) return OPEN;
    const keys = await this.keysOf(run, task);
    if ('kind' in keys) return keys;
    const attempts = (envelope.attempts ?? 0) + message.deliveryCount - 1;
    const held = message.held;
    const turn = held?.handlerStarting(envelope.jobId);
    if (turn) await turn;
    if (held && run.group.signal.aborted) {
      held.handlerEnded();
      const reason = 'worker shutting down';
      return {
        kind: 'deferred',
        settlement: { action: 'retry', delayMs: 0, reason, attempt: attempts },
      };
    }
    const deferrals = envelope.deferrals ?? 0;
    const waitMs = this.waitMs(deferrals);
    const { concurrency, rateLimit } = task;
    const slot: SlotRequest | undefined = concurrency && {
      scope: task.name,
      key: keys.slot,
      limit: concurrency.limit,
      holder: `${this.holderPrefix}.${++this.holders}`,
      leaseMs: this.leases.leaseMs,
    };
    let decision: FlowDecision;
    const askedAt = performance.now();
    try {
      decision = await this.store.admitTask({
        jobId: envelope.jobId,
        stage: envelope.stage,
        index: run.index,
        taskId: envelope.taskId,
        ...(slot ? { slot } : {}),
        ...(rateLimit
          ? {
              rate: {
                scope: task.name,
                key: keys.rate,
                limit: rateLimit.limit,
                periodMs: rateLimit.periodMs,
              },
            }
          : {}),
        waitMs,
      });
    } catch (err) {
      held?.handlerEnded();
      throw err;
    }
    if (decision.outcome === 'admitted') {
      if (slot) this.leases.hold(slot, askedAt);
      return { kind: 'admitted', pass: new FlowPass(held, slot, this.leases) };
    }
    held?.handlerEnded();
    if (decision.outcome === 'not-runnable') return { kind: 'not-runnable' };
    const settlement = await this.defer(run, job, { decision, waitMs, attempts });
    return { kind: 'deferred', settlement };
  }

  /**
   * The task's keys for its limits, from its validated input; the gate instead when the input
   * cannot give them (its row is gone, or it is invalid: once claimed, such a task is poisoned).
   */
  private async keysOf(run: TaskRun, task: TaskDefinition): Promise<FlowKeys | Gate> {
    const { envelope } = run;
    let input: unknown;
    if ('input' in envelope) input = envelope.input;
    else {
      const row = await this.ctx.store.getTask(envelope.taskId);
      if (!row) return { kind: 'not-runnable' };
      input = row.input;
    }
    try {
      if (task.input) input = await validate(task.input, input, 'input');
      return { slot: key(task, 'concurrency', input), rate: key(task, 'rateLimit', input) };
    } catch (err) {
      return { kind: 'invalid', error: toErrorInfo(err) };
    }
  }

  /**
   * Sends the task to wait: `attempts` are the task's attempts before this delivery. In a pack,
   * the pack splits it out; alone, a delayed copy is sent now and the message completed.
   */
  async defer(
    run: TaskRun,
    job: JobInfo,
    { decision, waitMs, attempts }: Deferral,
  ): Promise<TaskSettlement> {
    const deferrals = (run.envelope.deferrals ?? 0) + 1;
    const delayMs =
      decision.outcome === 'rateLimit'
        ? Math.min(decision.retryAfterMs, DEFAULTS.flowControl.maxRateWaitMs) + waitMs
        : waitMs;
    const reason =
      decision.outcome === 'rateLimit' ? 'waiting for a rate limit' : 'waiting for a key slot';
    if (run.inPack) return { action: 'retry', delayMs, reason, attempt: attempts, deferrals };
    const target = this.ctx.transportOf(job.transport);
    const body: TaskEnvelope = { ...run.envelope, attempts, deferrals };
    let text = encodeEnvelope(body);
    // The counts lengthen the body: an input that no longer fits stays in the task row.
    if ('input' in body && Buffer.byteLength(text) > target.transport.limits.maxMessageBytes) {
      const { input: _input, ...byReference } = body;
      text = encodeEnvelope(byReference);
    }
    await target.transport.send('task', [
      {
        body: text,
        messageId: `${body.taskId}~${deferrals}`,
        delayMs,
        ...routeOf(body.jobId, job.priority),
        ...(body.traceparent === undefined ? {} : { traceparent: body.traceparent }),
      },
    ]);
    return { action: 'complete' };
  }

  /**
   * Sends a claimed task back to wait: it lost its key slot before its handler started (the store
   * was slower than the lease), or the gate found it not runnable and the claim found it runnable.
   * Its claimed attempt counts only if the claim recorded it (not on a first delivery).
   */
  async deferClaimed(run: TaskRun, attempt: number): Promise<TaskSettlement> {
    const job = await this.ctx.directory.info(run.envelope.jobId);
    if (!job) return { action: 'retry', delayMs: 0, reason: 'job unknown', attempt };
    const waitMs = this.waitMs(run.envelope.deferrals ?? 0);
    return this.defer(run, job, {
      decision: { outcome: 'concurrency' },
      waitMs,
      attempts: attempt - 1,
    });
  }

  /** The wait before a refused task asks again: doubling per refusal, half of it at random. */
  private waitMs(deferrals: number): number {
    const base = Math.min(
      this.ctx.settings.flowControl.maxWaitMs,
      DEFAULTS.flowControl.initialWaitMs * 2 ** Math.min(deferrals, 20),
    );
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }

  /** Stops renewing leases and waits for the releases under way (the Switchyard closes). */
  close(): Promise<void> {
    return this.leases.close();
  }
}

/** A task's keys for its two limits ('' for a limit over the whole task). */
interface FlowKeys {
  slot: string;
  rate: string;
}

/** Why and how long a refused task waits; `attempts` are its attempts before this delivery. */
interface Deferral {
  decision: Exclude<FlowDecision, { outcome: 'admitted' | 'not-runnable' }>;
  waitMs: number;
  attempts: number;
}

function limited(task: TaskDefinition | undefined): boolean {
  return task?.concurrency !== undefined || task?.rateLimit !== undefined;
}

/** A task's key for one of its limits ('' for a limit over the whole task). */
function key(task: TaskDefinition, field: 'concurrency' | 'rateLimit', input: unknown): string {
  const fn = task[field]?.key;
  if (!fn) return '';
  const value: unknown = fn.call(task[field], input);
  if (typeof value !== 'string' || value.length > MAX_FLOW_KEY_LENGTH) {
    const message = `must return a string of at most ${MAX_FLOW_KEY_LENGTH} characters (got ${typeof value === 'string' ? `${value.length} characters` : (JSON.stringify(value) ?? typeof value)})`;
    throw new ValidationError(`task "${task.name}": ${field}.key ${message}`, [
      { path: `${field}.key`, message },
    ]);
  }
  return value;
}
