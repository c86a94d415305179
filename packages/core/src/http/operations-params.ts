/**
 * Input of the HTTP operations routes, validated into the store's filters: every problem is a
 * field issue naming the query parameter or body field (a 400 `INVALID_INPUT`).
 *
 * - `GET /api/jobs?status=&name=&transport=&created_after=&created_before=&cursor=&limit=`
 *   ({@link parseListJobsQuery}; `status` may list several, comma-separated);
 * - `POST /api/jobs/{jobId}/retry` body `{ stage?, task_ids? }` ({@link parseRetryBody});
 * - `POST /api/jobs/retry` and `POST /api/jobs/cancel` body `{ status?, name?, transport?,
 *   created_after?, created_before? }` ({@link parseJobFilterBody});
 * - `POST /api/jobs/purge` body `{ status?, older_than | finished_before, name?, limit? }`
 *   ({@link parsePurgeBody}).
 * @module
 */
import { type FieldIssue, ValidationError } from '../errors.js';
import { parseDuration } from '../operations/duration.js';
import type { RetryOptions } from '../operations/retry.js';
import type { JobStatus, ListJobsFilter, PurgeFilter } from '../store.js';
import { MAX_JOB_PAGE } from '../store.js';

const JOB_STATUSES: readonly JobStatus[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
];
const FINISHED: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];
const MAX_TEXT = 256;

class Issues {
  readonly list: FieldIssue[] = [];
  add(path: string, message: string): undefined {
    this.list.push({ path, message });
    return undefined;
  }
  throwIfAny(what: string): void {
    if (this.list.length > 0) throw new ValidationError(`invalid ${what}`, this.list);
  }
}

function statuses(
  value: unknown,
  field: string,
  issues: Issues,
  allowed: readonly JobStatus[] = JOB_STATUSES,
): JobStatus[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const list =
    typeof value === 'string'
      ? value.split(',').map((s) => s.trim())
      : Array.isArray(value)
        ? value
        : [value];
  const bad = list.filter((s) => !allowed.includes(s as JobStatus));
  if (bad.length > 0 || list.length === 0)
    return issues.add(field, `must be one or more of ${allowed.join(', ')}`);
  return list as JobStatus[];
}

function text(value: unknown, field: string, issues: Issues): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || value.length > MAX_TEXT)
    return issues.add(field, `must be a string of at most ${MAX_TEXT} characters`);
  return value;
}

function date(value: unknown, field: string, issues: Issues): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const parsed = typeof value === 'string' ? new Date(value) : undefined;
  if (!parsed || Number.isNaN(parsed.getTime()))
    return issues.add(field, 'must be an ISO 8601 date-time');
  return parsed;
}

function count(value: unknown, field: string, issues: Issues, max: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max)
    return issues.add(field, `must be an integer from 1 to ${max}`);
  return n;
}

function filterFields(get: (key: string) => unknown, issues: Issues): ListJobsFilter {
  const status = statuses(get('status'), 'status', issues);
  const name = text(get('name'), 'name', issues);
  const transport = text(get('transport'), 'transport', issues);
  const createdAfter = date(get('created_after'), 'created_after', issues);
  const createdBefore = date(get('created_before'), 'created_before', issues);
  return {
    ...(status ? { status } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(transport !== undefined ? { transport } : {}),
    ...(createdAfter ? { createdAfter } : {}),
    ...(createdBefore ? { createdBefore } : {}),
  };
}

/** @throws ValidationError naming each bad query parameter. */
export function parseListJobsQuery(query: URLSearchParams): ListJobsFilter {
  const issues = new Issues();
  const get = (key: string) => {
    const all = query.getAll(key);
    return all.length > 1 ? all.join(',') : (all[0] ?? undefined);
  };
  const filter = filterFields(get, issues);
  const cursor = text(get('cursor'), 'cursor', issues);
  const limit = count(get('limit'), 'limit', issues, MAX_JOB_PAGE);
  issues.throwIfAny('job list query');
  return {
    ...filter,
    ...(cursor !== undefined ? { cursor } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
}

function objectBody(body: unknown, what: string): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body))
    throw new ValidationError(`invalid ${what}`, [{ path: '', message: 'must be a JSON object' }]);
  return body as Record<string, unknown>;
}

function unknownKeys(body: Record<string, unknown>, known: readonly string[], issues: Issues) {
  for (const key of Object.keys(body))
    if (!known.includes(key)) issues.add(key, 'is not a field of this request');
}

/** @throws ValidationError naming each bad field. */
export function parseJobFilterBody(body: unknown): ListJobsFilter {
  const fields = objectBody(body, 'job filter');
  const issues = new Issues();
  unknownKeys(fields, ['status', 'name', 'transport', 'created_after', 'created_before'], issues);
  const filter = filterFields((key) => fields[key], issues);
  issues.throwIfAny('job filter');
  return filter;
}

/** @throws ValidationError naming each bad field. */
export function parseRetryBody(body: unknown): RetryOptions {
  const fields = objectBody(body, 'retry request');
  const issues = new Issues();
  unknownKeys(fields, ['stage', 'task_ids'], issues);
  const { stage, task_ids: taskIds } = fields;
  if (
    stage !== undefined &&
    !(typeof stage === 'string' && stage.length > 0 && stage.length <= MAX_TEXT) &&
    !(typeof stage === 'number' && Number.isInteger(stage) && stage >= 0)
  )
    issues.add('stage', 'must be a stage name or a non-negative index');
  if (
    taskIds !== undefined &&
    !(
      Array.isArray(taskIds) &&
      taskIds.length <= 10_000 &&
      taskIds.every((id) => typeof id === 'string' && id.length > 0 && id.length <= MAX_TEXT)
    )
  )
    issues.add('task_ids', 'must be an array of task ids');
  issues.throwIfAny('retry request');
  return {
    ...(stage !== undefined ? { stage: stage as string | number } : {}),
    ...(taskIds !== undefined ? { taskIds: taskIds as string[] } : {}),
  };
}

/** @throws ValidationError naming each bad field; one of `older_than` / `finished_before` is required. */
export function parsePurgeBody(body: unknown, now = new Date()): PurgeFilter {
  const fields = objectBody(body, 'purge request');
  const issues = new Issues();
  unknownKeys(fields, ['status', 'older_than', 'finished_before', 'name', 'limit'], issues);
  const status = statuses(fields.status, 'status', issues, FINISHED);
  const name = text(fields.name, 'name', issues);
  const limit = count(fields.limit, 'limit', issues, 1_000_000_000);
  let finishedBefore = date(fields.finished_before, 'finished_before', issues);
  if (fields.older_than !== undefined) {
    try {
      finishedBefore = new Date(
        now.getTime() - parseDuration(fields.older_than as string, 'older_than'),
      );
    } catch (err) {
      for (const issue of (err as ValidationError).issues ?? [])
        issues.add(issue.path, issue.message);
    }
  }
  if (fields.older_than === undefined && fields.finished_before === undefined)
    issues.add('older_than', 'older_than (e.g. "7d") or finished_before is required');
  issues.throwIfAny('purge request');
  return {
    finishedBefore: finishedBefore!,
    ...(status ? { status } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
}
