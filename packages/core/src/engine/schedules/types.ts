/** Public types of schedules: their definition, options and views. */
import type { CatchUp } from './evaluate.js';

export type { CatchUp };

/** A job submitted on a cron schedule, once per fire across every instance. */
export interface ScheduleDefinition {
  /** Unique; with the fire time it keys each fire's job (idempotent submit). */
  name: string;
  /** The job to submit. */
  job: string;
  /** 5 fields (`'5 * * * *'`, minute precision) or 6 (seconds first). */
  cron: string;
  /** IANA time zone the cron fields are read in. @defaultValue `'UTC'` */
  timezone?: string;
  /** The job's params, or a function of the fire time returning them. */
  params?: unknown;
  /** `skip`: a fire is skipped while the previous fire's job is not finished. @defaultValue `'allow'` */
  overlap?: 'skip' | 'allow';
  /** Fires missed while no instance evaluated schedules. @defaultValue `'latest'` */
  catchUp?: CatchUp;
  /** Processing path of the submitted jobs. @defaultValue the default transport */
  transport?: string;
}

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
