import type { JobView, StageView, TaskRecord } from '@switchyard/core';
import { type DashboardYard, tasksOf } from './operations.js';

/** Longest JSON preview of params or a result sent to the page, characters. */
export const PREVIEW_CHARS = 4000;
/** Failed tasks and results shown on a job's page. */
export const PREVIEW_ITEMS = 20;

/** A job as its page shows it: the view with params and result as bounded JSON text. */
export interface JobHeader {
  id: string;
  name: string;
  status: JobView['status'];
  transport: string;
  priority: JobView['priority'];
  currentStage?: { index: number; name: string };
  stages: StageView[];
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  durationMs?: number;
  error?: JobView['error'];
  params: string;
  result?: string;
}

/** A job's page: its header plus the newest failed tasks and the first results. */
export interface JobDetail extends JobHeader {
  failedTasks: Pick<TaskRecord, 'id' | 'stage' | 'index' | 'attempts' | 'error' | 'finishedAt'>[];
  results: { stage: number; index: number; result: string }[];
}

/** Progress of a job's current stage, as the Jobs page draws it. */
export interface JobProgress {
  id: string;
  status: JobView['status'];
  stageIndex?: number;
  stageName?: string;
  stageCount: number;
  total: number;
  sealed: boolean;
  succeeded: number;
  failed: number;
  running: number;
  pending: number;
}

/** JSON text of a value, cut at `max` characters (the page renders it as text). */
export function preview(value: unknown, max = PREVIEW_CHARS): string {
  let text: string;
  try {
    text = JSON.stringify(value, null, 2) ?? 'undefined';
  } catch {
    text = String(value);
  }
  return text.length > max
    ? `${text.slice(0, max)}\n… (${text.length - max} more characters)`
    : text;
}

/** The job's aggregates only (stage counts and timings): what live updates send every tick. */
export function jobHeader(view: JobView): JobHeader {
  return {
    id: view.id,
    name: view.name,
    status: view.status,
    transport: view.transport,
    priority: view.priority,
    ...(view.currentStage ? { currentStage: view.currentStage } : {}),
    stages: view.stages,
    createdAt: view.createdAt,
    ...(view.startedAt ? { startedAt: view.startedAt } : {}),
    ...(view.finishedAt ? { finishedAt: view.finishedAt } : {}),
    ...(view.durationMs === undefined ? {} : { durationMs: view.durationMs }),
    ...(view.error ? { error: view.error } : {}),
    params: preview(view.params),
    ...(view.result === undefined ? {} : { result: preview(view.result) }),
  };
}

/** The header plus one page of failed tasks and the first results (read on demand, not live). */
export async function jobDetail(yard: DashboardYard, view: JobView): Promise<JobDetail> {
  const failedCount = view.stages.reduce((sum, s) => sum + s.failed, 0);
  const listTasks = tasksOf(yard);
  const failedTasks =
    failedCount === 0 || !listTasks
      ? []
      : (await listTasks(view.id, { status: 'failed', limit: PREVIEW_ITEMS })).tasks.map((t) => ({
          id: t.id,
          stage: t.stage,
          index: t.index,
          attempts: t.attempts,
          ...(t.error ? { error: t.error } : {}),
          ...(t.finishedAt ? { finishedAt: t.finishedAt } : {}),
        }));
  const results: JobDetail['results'] = [];
  if (view.stages.some((s) => s.succeeded > 0)) {
    for (const [stage, s] of view.stages.entries()) {
      if (s.succeeded === 0 || results.length >= PREVIEW_ITEMS) continue;
      for await (const r of yard.results(view.id, stage)) {
        results.push({ stage, index: r.index, result: preview(r.result, 500) });
        if (results.length >= PREVIEW_ITEMS || results.filter((x) => x.stage === stage).length >= 5)
          break;
      }
    }
  }
  return { ...jobHeader(view), failedTasks, results };
}

/** Current-stage progress of each job (unknown ids are left out). */
export async function progressOf(
  yard: DashboardYard,
  ids: readonly string[],
): Promise<JobProgress[]> {
  const views = await Promise.all(ids.map((id) => yard.getJob(id)));
  return views.filter((v): v is JobView => v !== undefined).map(progress);
}

function progress(view: JobView): JobProgress {
  const stage = view.currentStage
    ? view.stages[view.currentStage.index]
    : view.stages.findLast((s) => s.total > 0);
  return {
    id: view.id,
    status: view.status,
    ...(stage ? { stageIndex: stage.index, stageName: stage.name } : {}),
    stageCount: view.stages.length,
    total: stage?.total ?? 0,
    sealed: stage?.sealed ?? false,
    succeeded: stage?.succeeded ?? 0,
    failed: stage?.failed ?? 0,
    running: stage?.running ?? 0,
    pending: stage?.pending ?? 0,
  };
}
