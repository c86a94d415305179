/**
 * The scheduler pass, under a store lease so one instance evaluates at a time: release delayed
 * jobs that are due, cancel jobs past their deadline, and submit the schedules' due fires. Each
 * fire is submitted with the idempotency key `schedule:<name>:<fire time>`, so a pass that crashes
 * between submitting and recording, or two instances overlapping as the lease changes hands,
 * create the fire's job once; the cursor then moves past it.
 */
import { SwitchyardError, toErrorInfo, ValidationError } from '../../errors.js';
import { deriveJobId } from '../../ids.js';
import { FINISHED_STATUSES } from '../../operations/statuses.js';
import { isPriority } from '../../priority.js';
import type { ScheduleState } from '../../store.js';
import type { EngineContext } from '../context.js';
import { DEFAULTS } from '../defaults.js';
import { sendStageMessage } from '../outbox.js';
import type { SubmitRequest } from '../submit.js';
import type { SubmitResult } from '../types.js';
import { type CompiledSchedule, compileSchedule, dueFires } from './evaluate.js';
import type {
  ScheduleDefinition,
  SchedulePassResult,
  SchedulerOptions,
  ScheduleView,
} from './types.js';

/** The store lease that admits one scheduler at a time. */
const LEASE = 'scheduler';

type Submit = (request: SubmitRequest) => Promise<SubmitResult>;

/** What a {@link Scheduler} works with besides the engine's context. */
export interface SchedulerParts {
  entries: ReadonlyMap<string, Entry>;
  settings: SchedulerSettings;
  /** Submits a fired schedule's job (the engine's `submit`). */
  submit: Submit;
  /** This instance's holder name for the scheduler's lease. */
  instanceId: string;
}

interface Entry {
  def: ScheduleDefinition;
  compiled: CompiledSchedule;
}

export interface SchedulerSettings {
  intervalMs: number;
  leaseMs: number;
  graceMs: number;
}

/**
 * Checks schedule definitions once and compiles their cron expressions.
 * @throws {ValidationError} naming the field of the first invalid schedule
 */
export function resolveSchedules(
  schedules: readonly ScheduleDefinition[] | undefined,
  options: SchedulerOptions | undefined,
  jobs: ReadonlySet<string>,
): { entries: Map<string, Entry>; settings: SchedulerSettings } {
  const entries = new Map<string, Entry>();
  (schedules ?? []).forEach((def, i) => {
    const path = `schedules[${i}]`;
    const fail = (field: string, message: string): never => {
      throw new ValidationError(`${path}.${field} ${message}`, [
        { path: `${path}.${field}`, message },
      ]);
    };
    if (typeof def.name !== 'string' || def.name.length === 0)
      fail('name', 'must be a non-empty string');
    if (entries.has(def.name)) fail('name', `"${def.name}" is used by two schedules`);
    if (!jobs.has(def.job)) fail('job', `names unknown job "${def.job}"`);
    if (def.overlap !== undefined && def.overlap !== 'skip' && def.overlap !== 'allow')
      fail('overlap', "must be 'skip' or 'allow'");
    if (def.priority !== undefined && !isPriority(def.priority))
      fail('priority', "must be 'high', 'normal' or 'low'");
    const catchUp = def.catchUp ?? DEFAULTS.schedules.catchUp;
    if (catchUp !== 'none' && catchUp !== 'latest' && catchUp !== 'all')
      fail('catchUp', "must be 'none', 'latest' or 'all'");
    const compiled = compileSchedule(
      {
        name: def.name,
        cron: def.cron,
        catchUp,
        ...(def.timezone ? { timezone: def.timezone } : {}),
      },
      path,
    );
    entries.set(def.name, { def, compiled });
  });
  const settings = { ...DEFAULTS.schedules.pass, ...options };
  for (const key of ['intervalMs', 'leaseMs', 'graceMs'] as const)
    if (!Number.isFinite(settings[key]) || settings[key] < 0)
      throw new ValidationError(`scheduler.${key} must be a number >= 0`, [
        { path: `scheduler.${key}`, message: 'must be a number >= 0' },
      ]);
  return { entries, settings };
}

export class Scheduler {
  private running: Promise<SchedulePassResult> | undefined;

  private readonly entries: ReadonlyMap<string, Entry>;
  private readonly settings: SchedulerSettings;
  private readonly submit: Submit;
  private readonly instanceId: string;

  constructor(
    private readonly ctx: EngineContext,
    { entries, settings, submit, instanceId }: SchedulerParts,
  ) {
    this.entries = entries;
    this.settings = settings;
    this.submit = submit;
    this.instanceId = instanceId;
  }

  get intervalMs(): number {
    return this.settings.intervalMs;
  }

  /** One pass; a call during a pass joins it. `now` is the evaluation time (tests pass a fake one). */
  pass(now?: Date): Promise<SchedulePassResult> {
    this.running ??= this.run(now ?? new Date()).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async list(now = new Date()): Promise<ScheduleView[]> {
    await this.ctx.init();
    const states = await this.states();
    return [...this.entries.values()].map(({ def, compiled }) => {
      const state = states.get(def.name);
      const paused = state?.paused ?? false;
      const next = paused ? undefined : compiled.nextAfter(now);
      return {
        name: def.name,
        job: def.job,
        cron: def.cron,
        timezone: def.timezone ?? 'UTC',
        paused,
        ...(state?.lastFireAt ? { lastFireAt: state.lastFireAt } : {}),
        ...(state?.lastJobId ? { lastJobId: state.lastJobId } : {}),
        ...(next ? { nextFireAt: next } : {}),
      };
    });
  }

  /** @throws {SwitchyardError} `UNKNOWN_SCHEDULE` */
  async setPaused(name: string, paused: boolean): Promise<void> {
    this.entry(name);
    await this.ctx.init();
    await this.ctx.store.setSchedulePaused(name, paused);
  }

  /**
   * Submits the schedule's job now, outside its cron (keyed by this instant, so it never
   * collides with a cron fire).
   * @throws {SwitchyardError} `UNKNOWN_SCHEDULE`
   */
  async trigger(name: string, now = new Date()): Promise<SubmitResult> {
    const { def } = this.entry(name);
    return this.submit(fire(def, now, `schedule:${name}:trigger:${now.toISOString()}`));
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) throw new SwitchyardError('UNKNOWN_SCHEDULE', `unknown schedule "${name}"`);
    return entry;
  }

  private async states(): Promise<Map<string, ScheduleState>> {
    return new Map((await this.ctx.store.getScheduleStates()).map((s) => [s.name, s]));
  }

  private async run(now: Date): Promise<SchedulePassResult> {
    const { store } = this.ctx;
    await this.ctx.init();
    const result: SchedulePassResult = {
      ran: false,
      fired: [],
      skipped: 0,
      released: 0,
      expired: 0,
    };
    const leaseMs = Math.max(1, this.settings.leaseMs);
    if (!(await store.acquireLease(LEASE, this.instanceId, leaseMs))) return result;
    result.ran = true;
    const limit = DEFAULTS.schedules.limit;
    for (const job of await store.releaseDueJobs(limit)) {
      if (!this.ctx.settings.transports.has(job.transport)) continue;
      await sendStageMessage(this.ctx.transportOf(job.transport), { jobId: job.jobId, stage: 0 });
      result.released++;
    }
    const expired = await store.expireJobs(limit);
    // This instance's running handlers of those jobs see DEADLINE_EXCEEDED at once.
    for (const jobId of expired) {
      void this.ctx.cancels.abort(jobId);
      this.ctx.directory.ended(jobId);
    }
    result.expired = expired.length;
    if (this.entries.size === 0) return result;
    const states = await this.states();
    for (const entry of this.entries.values()) {
      try {
        await this.evaluate(entry, { state: states.get(entry.def.name), now, result });
      } catch (err) {
        this.ctx.logger.error('schedule evaluation failed', {
          schedule: entry.def.name,
          error: toErrorInfo(err).message,
        });
      }
    }
    return result;
  }

  private async evaluate(
    { def, compiled }: Entry,
    {
      state,
      now,
      result,
    }: { state: ScheduleState | undefined; now: Date; result: SchedulePassResult },
  ): Promise<void> {
    const { store } = this.ctx;
    // A schedule seen for the first time starts now: nothing before it existed is missed.
    if (!state?.cursor) {
      await store.advanceSchedule({ name: def.name, cursor: now });
      return;
    }
    const due = dueFires({
      schedule: compiled,
      cursor: state.cursor,
      now,
      graceMs: this.settings.graceMs,
      limit: DEFAULTS.schedules.limit,
    });
    result.skipped += due.skipped;
    let lastJobId = state.lastJobId;
    // The cursor as stored: skipped fires do not move it one by one, the end of the pass does.
    let stored = state.cursor;
    for (const fireAt of due.fires) {
      const idempotencyKey = `schedule:${def.name}:${fireAt.toISOString()}`;
      if (state.paused || (await this.overlaps(def, lastJobId, idempotencyKey))) {
        result.skipped++;
        continue;
      }
      const submitted = await this.submit(fire(def, fireAt, idempotencyKey));
      lastJobId = submitted.jobId;
      await store.advanceSchedule({
        name: def.name,
        cursor: fireAt,
        lastFireAt: fireAt,
        lastJobId,
      });
      stored = fireAt;
      result.fired.push({
        schedule: def.name,
        fireAt,
        jobId: submitted.jobId,
        created: submitted.created,
      });
    }
    // Also when the last fires were skipped (paused, overlapping), even at the pass's fire limit.
    if (due.cursor > stored) await store.advanceSchedule({ name: def.name, cursor: due.cursor });
  }

  /**
   * Under `overlap: 'skip'`: true while the previous fire's job is not finished — unless this
   * fire's job exists already (a pass submitted it, then died before moving the cursor): that
   * fire was decided, and is re-submitted (idempotent) rather than skipped.
   */
  private async overlaps(
    def: ScheduleDefinition,
    previousJobId: string | undefined,
    idempotencyKey: string,
  ): Promise<boolean> {
    if (def.overlap !== 'skip' || !(await this.isRunning(previousJobId))) return false;
    return !(await this.ctx.store.getJob(deriveJobId(def.job, '', idempotencyKey)));
  }

  private async isRunning(jobId: string | undefined): Promise<boolean> {
    if (!jobId) return false;
    const job = await this.ctx.store.getJob(jobId);
    return job !== undefined && !FINISHED_STATUSES.has(job.status);
  }
}

function paramsAt(def: ScheduleDefinition, fireAt: Date): unknown {
  return typeof def.params === 'function'
    ? (def.params as (at: Date) => unknown)(fireAt)
    : def.params;
}

/** The submission of a schedule's job fired at `at`, keyed so each fire submits once. */
function fire(def: ScheduleDefinition, at: Date, idempotencyKey: string): SubmitRequest {
  return {
    jobName: def.job,
    params: paramsAt(def, at),
    options: {
      idempotencyKey,
      ...(def.transport ? { transport: def.transport } : {}),
      ...(def.priority ? { priority: def.priority } : {}),
    },
  };
}
