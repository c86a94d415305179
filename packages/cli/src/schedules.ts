/**
 * `switchyard schedules [list | pause <name> | resume <name> | trigger <name>]`: the jobs module's
 * cron schedules (its `schedules` export), with their last and next fire.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ScheduleDefinition, type Switchyard, SwitchyardError } from '@switchyard/core';
import { table } from './render.js';

/**
 * The `schedules` export of the jobs module (none when it has no such export).
 * @throws SwitchyardError `CONFIG_ERROR` when `schedules` is not an array
 */
export async function loadSchedules(spec: string): Promise<ScheduleDefinition[]> {
  const target =
    spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolve(spec)).href : spec;
  const mod = (await import(target)) as { schedules?: unknown };
  if (mod.schedules === undefined) return [];
  if (!Array.isArray(mod.schedules))
    throw new SwitchyardError(
      'CONFIG_ERROR',
      `jobs module "${spec}": "schedules" must be an array`,
    );
  return mod.schedules as ScheduleDefinition[];
}

export type ScheduleAction = 'list' | 'pause' | 'resume' | 'trigger';

/** Checks the arguments; returns what to run. */
export function parseSchedulesArgs(
  args: string[],
): { action: ScheduleAction; name?: string } | string {
  const [action = 'list', name, extra] = args;
  if (action === 'list') return args.length <= 1 ? { action } : `unexpected argument "${name}"`;
  if (action !== 'pause' && action !== 'resume' && action !== 'trigger')
    return 'schedules needs "list", "pause", "resume" or "trigger"';
  if (!name) return `"schedules ${action}" needs <name>`;
  if (extra !== undefined) return `unexpected argument "${extra}"`;
  return { action, name };
}

/** Runs a schedules command; returns the text (or JSON) to print. */
export async function runSchedules(
  yard: Switchyard,
  command: { action: ScheduleAction; name?: string },
  json: boolean,
): Promise<string> {
  const { action, name } = command;
  if (action === 'pause' || action === 'resume') {
    await (action === 'pause' ? yard.pauseSchedule(name!) : yard.resumeSchedule(name!));
    return json
      ? JSON.stringify({ schedule: name, paused: action === 'pause' })
      : `${action}d ${name}`;
  }
  if (action === 'trigger') {
    const result = await yard.triggerSchedule(name!);
    return json
      ? JSON.stringify(result)
      : `triggered ${name}: job ${result.jobId} (${result.status})`;
  }
  const schedules = await yard.listSchedules();
  if (json) return JSON.stringify({ schedules });
  if (schedules.length === 0) return 'no schedules (export `schedules` from the jobs module)';
  const when = (d: Date | undefined) => d?.toISOString() ?? '-';
  return table(
    ['name', 'job', 'cron', 'timezone', 'state', 'last fire', 'next fire'],
    schedules.map((s) => [
      s.name,
      s.job,
      s.cron,
      s.timezone,
      s.paused ? 'paused' : 'active',
      when(s.lastFireAt),
      when(s.nextFireAt),
    ]),
  );
}
