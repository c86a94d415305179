/** Public types of schedules: their definition, options and views. */
import type { JobInput } from '../../define.js';
import type { Priority } from '../../priority.js';
import type { CatchUp } from './evaluate.js';

export type { CatchUp };

/**
 * A schedule's params: a value, or a function of the fire time returning one. With the job's
 * params type `P` known both are checked against it; with `P` unknown (a job loaded at run time)
 * any value or function is accepted, and the function's `fireAt` is still a `Date`.
 */
export type ScheduleParams<P> = unknown extends P
  ? ((fireAt: Date) => unknown) | object | string | number | boolean | null
  : P | ((fireAt: Date) => P);

/**
 * A job submitted on a cron schedule, once per fire across every instance. `N` is the job's name
 * and `P` its params as `submit` takes them: `createSwitchyard` fills both in from its `jobs`.
 */
export interface ScheduleDefinition<N extends string = string, P = unknown> {
  /** Unique; with the fire time it keys each fire's job (idempotent submit). */
  name: string;
  /** The job to submit. */
  job: N;
  /** 5 fields (`'5 * * * *'`, minute precision) or 6 (seconds first). */
  cron: string;
  /** IANA time zone the cron fields are read in. @defaultValue `'UTC'` */
  timezone?: string;
  /** The job's params, or a function of the fire time (the fire's scheduled instant) returning them. */
  params?: ScheduleParams<P>;
  /** `skip`: a fire is skipped while the previous fire's job is not finished. @defaultValue `'allow'` */
  overlap?: 'skip' | 'allow';
  /** Fires missed while no instance evaluated schedules. @defaultValue `'latest'` */
  catchUp?: CatchUp;
  /** Processing path of the submitted jobs. @defaultValue the default transport */
  transport?: string;
  /** Priority of the submitted jobs (see `SubmitOptions.priority`). @defaultValue 'normal' */
  priority?: Priority;
}

/**
 * The schedules a Switchyard of these jobs accepts: each names one of the jobs, and its `params`
 * (or what its `params` function returns) are that job's params.
 */
export type ScheduleFor<Jobs extends readonly { readonly name: string }[]> =
  Jobs[number] extends infer J
    ? J extends { readonly name: infer N extends string }
      ? ScheduleDefinition<N, JobInput<J>>
      : never
    : never;

/** How instances evaluate schedules, release delayed jobs and expire deadlines. */
export interface SchedulerOptions {
  /** How often `work()` runs a pass; 0 disables it. @defaultValue 5000 */
  intervalMs?: number;
  /** The evaluating instance's store lease; another takes over this long after it dies. @defaultValue 30000 */
  leaseMs?: number;
  /** A fire older than this when evaluated counts as missed (`catchUp` applies). @defaultValue 60000 */
  graceMs?: number;
}

/** A schedule as `listSchedules()` reports it. */
export interface ScheduleView {
  name: string;
  job: string;
  cron: string;
  timezone: string;
  paused: boolean;
  lastFireAt?: Date;
  lastJobId?: string;
  /** The next fire after now (absent while paused or when the expression never fires again). */
  nextFireAt?: Date;
}

/** What one scheduler pass did. */
export interface SchedulePassResult {
  /** False when another instance holds the scheduler lease. */
  ran: boolean;
  /** Fires submitted (`created` false: the fire's job existed already). */
  fired: { schedule: string; fireAt: Date; jobId: string; created: boolean }[];
  /** Fires skipped (missed under `catchUp`, overlapping under `overlap: 'skip'`, paused). */
  skipped: number;
  /** Delayed jobs released to run. */
  released: number;
  /** Jobs cancelled past their deadline. */
  expired: number;
}
