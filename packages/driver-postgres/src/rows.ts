import type { ErrorInfo, JobStatus, StageStatus } from '@switchyard/core';
import type { JobRecord, StageRecord, TaskRecord, TaskStatus } from '@switchyard/core/driver';
import { taskId } from '@switchyard/core/driver';

/** Row shapes as the driver returns them (`json` parsed, `timestamptz` as Date). */
export interface JobRow {
  id: string;
  name: string;
  params: unknown;
  transport: string;
  status: JobStatus;
  current_stage: number;
  stage_count: number;
  idempotency_key: string | null;
  result: unknown;
  error: ErrorInfo | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
  run_at: Date | null;
  deadline_at: Date | null;
  priority: 'high' | 'low' | null;
}

export interface StageRow {
  job_id: string;
  idx: number;
  name: string;
  status: StageStatus;
  total: number | null;
  created: number;
  succeeded: number;
  failed: number;
  running: number;
  released: number | null;
  started_at: Date;
  sealed_at: Date | null;
  completed_at: Date | null;
}

export interface TaskRow {
  job_id: string;
  stage: number;
  idx: number;
  status: TaskStatus;
  attempts: number;
  timeouts: number;
  input: unknown;
  result: unknown;
  error: ErrorInfo | null;
  batch_id: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

/**
 * The columns each row shape is read from, named rather than `*`: a prepared statement's result
 * must not change shape when a later migration adds a column under a running worker.
 */
const columnList = <Row>(columns: Record<keyof Row, true>): string =>
  Object.keys(columns).join(', ');

export const JOB_COLUMNS = columnList<JobRow>({
  id: true,
  name: true,
  params: true,
  transport: true,
  status: true,
  current_stage: true,
  stage_count: true,
  idempotency_key: true,
  result: true,
  error: true,
  created_at: true,
  started_at: true,
  finished_at: true,
  updated_at: true,
  run_at: true,
  deadline_at: true,
  priority: true,
});

export const STAGE_COLUMNS = columnList<StageRow>({
  job_id: true,
  idx: true,
  name: true,
  status: true,
  total: true,
  created: true,
  succeeded: true,
  failed: true,
  running: true,
  released: true,
  started_at: true,
  sealed_at: true,
  completed_at: true,
});

export const TASK_COLUMNS = columnList<TaskRow>({
  job_id: true,
  stage: true,
  idx: true,
  status: true,
  attempts: true,
  timeouts: true,
  input: true,
  result: true,
  error: true,
  batch_id: true,
  created_at: true,
  updated_at: true,
  started_at: true,
  finished_at: true,
});

/** `json` NULL means "absent"; JSON `null` comes back as null. */
const present = <K extends string, V>(key: K, value: V | null | undefined): { [P in K]?: V } =>
  (value === null || value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

export function toJob(r: JobRow): JobRecord {
  return {
    id: r.id,
    name: r.name,
    params: r.params ?? undefined,
    transport: r.transport,
    status: r.status,
    currentStage: r.current_stage,
    stageCount: r.stage_count,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...present('idempotencyKey', r.idempotency_key),
    ...present('result', r.result),
    ...present('error', r.error),
    ...present('startedAt', r.started_at),
    ...present('finishedAt', r.finished_at),
    ...present('runAt', r.run_at),
    ...present('deadlineAt', r.deadline_at),
    ...present('priority', r.priority),
  };
}

export function toStage(r: StageRow): StageRecord {
  return {
    jobId: r.job_id,
    index: r.idx,
    name: r.name,
    status: r.status,
    total: r.total,
    created: r.created,
    succeeded: r.succeeded,
    failed: r.failed,
    running: r.running,
    released: r.released,
    startedAt: r.started_at,
    ...present('sealedAt', r.sealed_at),
    ...present('completedAt', r.completed_at),
  };
}

export function toTask(r: TaskRow): TaskRecord {
  return {
    id: taskId(r.job_id, r.stage, r.idx),
    jobId: r.job_id,
    stage: r.stage,
    index: r.idx,
    status: r.status,
    attempts: r.attempts,
    timeouts: r.timeouts,
    input: r.input ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...present('result', r.result),
    ...present('error', r.error),
    ...present('batchId', r.batch_id),
    ...present('startedAt', r.started_at),
    ...present('finishedAt', r.finished_at),
  };
}
