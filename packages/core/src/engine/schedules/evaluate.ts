/**
 * The schedule evaluator, pure: given a schedule, the time up to which its fires are accounted
 * for (its cursor) and "now", it returns the fires due. No clock, no store: the scheduler
 * (scheduler.ts) calls it under its lease, and tests call it with any "now".
 *
 * Time zones and daylight saving follow `croner`: a wall-clock time that does not exist (the hour
 * skipped when clocks go forward) fires at the same minute an hour later; a wall-clock time that
 * occurs twice (the hour repeated when clocks go back) fires once, at its first occurrence.
 */
import { Cron } from 'croner';
import { ValidationError } from '../../errors.js';

/** What to do with fires missed while no instance evaluated the schedule (every worker down). */
export type CatchUp = 'none' | 'latest' | 'all';

/** The timing part of a schedule, as the evaluator reads it. */
export interface ScheduleTiming {
  name: string;
  /** 5 fields (minute precision) or 6 (seconds first). */
  cron: string;
  /** IANA time zone the cron fields are read in. @defaultValue `'UTC'` */
  timezone?: string;
  catchUp: CatchUp;
}

/** A parsed schedule: its cron expression compiled once. */
export interface CompiledSchedule {
  timing: ScheduleTiming;
  /** The first fire strictly after `after`, or undefined when the expression never fires again. */
  nextAfter(after: Date): Date | undefined;
}

export interface DueFires {
  /** Fires to submit now, oldest first. */
  fires: Date[];
  /** Fires skipped because they were missed and `catchUp` drops them. */
  skipped: number;
  /** The new cursor: every fire up to it is accounted for (fired or skipped). */
  cursor: Date;
}

/**
 * Compiles a schedule's cron expression and checks its time zone.
 * @throws {ValidationError} naming `schedules[i].cron` / `.timezone` when either is invalid
 */
export function compileSchedule(timing: ScheduleTiming, path: string): CompiledSchedule {
  const timezone = timing.timezone ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    const message = `unknown time zone "${timezone}" (an IANA name such as "Europe/Paris")`;
    throw new ValidationError(`${path}.timezone: ${message}`, [
      { path: `${path}.timezone`, message },
    ]);
  }
  let cron: Cron;
  try {
    cron = new Cron(timing.cron, { timezone, paused: true, legacyMode: true });
  } catch (err) {
    const message = `invalid cron expression "${timing.cron}": ${(err as Error).message}`;
    throw new ValidationError(`${path}.cron: ${message}`, [{ path: `${path}.cron`, message }]);
  }
  return {
    timing,
    nextAfter: (after) => cron.nextRun(after) ?? undefined,
  };
}

export interface EvaluateInput {
  schedule: CompiledSchedule;
  /** Fires at or before this are accounted for. */
  cursor: Date;
  now: Date;
  /** A fire older than this when evaluated counts as missed (see `catchUp`). */
  graceMs: number;
  /** Most fires returned; the cursor stops at the last one returned so the rest come next pass. */
  limit: number;
}

/**
 * The fires in (cursor, now]. Fires within `graceMs` of now are on time and all fire; older ones
 * were missed and follow `catchUp`: `none` skips them, `latest` fires the most recent missed one
 * only when no on-time fire follows it (one run catches up), `all` fires each (at most `limit`
 * per call).
 */
export function dueFires(input: EvaluateInput): DueFires {
  const { schedule, now, graceMs, limit } = input;
  const policy = schedule.timing.catchUp;
  const onTimeFrom = now.getTime() - graceMs;
  const fires: Date[] = [];
  let skipped = 0;
  let latestMissed: Date | undefined;
  let cursor = input.cursor;
  for (let at = schedule.nextAfter(cursor); at && at <= now; at = schedule.nextAfter(at)) {
    const missed = at.getTime() < onTimeFrom;
    if (missed && policy !== 'all') {
      if (policy === 'latest' && latestMissed) skipped++;
      if (policy === 'latest') latestMissed = at;
      else skipped++;
      cursor = at;
      continue;
    }
    // An on-time fire supersedes the missed ones: `latest` catches up with one run.
    if (latestMissed) {
      skipped++;
      latestMissed = undefined;
    }
    if (fires.length >= limit) return { fires, skipped, cursor: fires[fires.length - 1]! };
    fires.push(at);
    cursor = at;
  }
  if (latestMissed) fires.push(latestMissed);
  // Every fire up to now is accounted for.
  return { fires, skipped, cursor: new Date(Math.max(cursor.getTime(), now.getTime())) };
}
