import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SwitchyardError } from '@switchyard/core';

/** A job definition, as far as loading needs to know. */
export interface NamedJob {
  readonly name: string;
  readonly stages: readonly unknown[];
}

/** The module `--jobs` falls back to: the seed's `hello_world` example jobs. */
export const DEFAULT_JOBS_MODULE = '@switchyard/example-jobs';

/**
 * Whether `value` is what `defineJob()` returns: a name and stages, each with a name, a `fanOut`
 * and a task whose `handler` is a function. Anything less (`{ name, stages: [1] }`) is no job, and
 * would fail deep inside the engine instead of here.
 */
function isJob(value: unknown): value is NamedJob {
  if (typeof value !== 'object' || value === null) return false;
  const { name, stages } = value as { name?: unknown; stages?: unknown };
  return typeof name === 'string' && Array.isArray(stages) && stages.every(isStage);
}

function isStage(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const { name, fanOut, task } = value as { name?: unknown; fanOut?: unknown; task?: unknown };
  return (
    typeof name === 'string' &&
    typeof fanOut === 'function' &&
    typeof task === 'object' &&
    task !== null &&
    typeof (task as { handler?: unknown }).handler === 'function'
  );
}

/**
 * Imports a module and collects every exported job definition (a named export, an exported array
 * of jobs, or the default export). `spec` is a file path (relative to the working directory) or a
 * package name.
 * @throws SwitchyardError `CONFIG_ERROR` when the module cannot be loaded or exports no job.
 */
export async function loadJobs(spec: string = DEFAULT_JOBS_MODULE): Promise<NamedJob[]> {
  const target =
    spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolve(spec)).href : spec;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(target)) as Record<string, unknown>;
  } catch (err) {
    // Outside this repository the example jobs are not installed: say what to pass instead.
    if (spec === DEFAULT_JOBS_MODULE && isMissingModule(err, spec))
      throw new SwitchyardError(
        'CONFIG_ERROR',
        `no jobs module: pass --jobs <module> (a file or package exporting defineJob() results) or set SWITCHYARD_JOBS; the default, "${spec}", is the Switchyard repository's example and is not installed here`,
        {
          cause: err,
          issues: [
            { path: 'SWITCHYARD_JOBS', message: 'unset, and the example jobs are not installed' },
          ],
        },
      );
    throw new SwitchyardError('CONFIG_ERROR', `cannot load jobs module "${spec}"`, {
      cause: err,
      issues: [
        { path: 'SWITCHYARD_JOBS', message: `cannot load "${spec}": ${(err as Error).message}` },
      ],
    });
  }
  const jobs = new Map<string, NamedJob>();
  for (const value of Object.values(mod)) {
    for (const candidate of Array.isArray(value) ? value : [value])
      if (isJob(candidate)) jobs.set(candidate.name, candidate);
  }
  if (jobs.size === 0)
    throw new SwitchyardError('CONFIG_ERROR', `jobs module "${spec}" exports no job definition`, {
      issues: [{ path: 'SWITCHYARD_JOBS', message: `"${spec}" exports no defineJob() result` }],
    });
  return [...jobs.values()];
}

/** Whether `err` says the package `spec` itself (not one it imports) cannot be found. */
function isMissingModule(err: unknown, spec: string): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return (
    code === 'ERR_MODULE_NOT_FOUND' && typeof message === 'string' && message.includes(`'${spec}'`)
  );
}
