/**
 * Input of the HTTP operations routes, validated into the store's filters: every problem is a
 * field issue naming the query parameter or body field (a 400 `INVALID_INPUT`). Field names are
 * camelCase like every other field of the HTTP API (`idempotencyKey`, `runAt`, `nextCursor`); a
 * snake_case spelling is refused with the right name suggested.
 *
 * - `GET /api/jobs?status=&name=&transport=&priority=&createdAfter=&createdBefore=&cursor=&limit=`
 *   ({@link parseListJobsQuery}; `status` may list several, comma-separated or repeated);
 * - `POST /api/jobs/{jobId}/retry` body `{ stage?, taskIds? }` ({@link parseRetryBody});
 * - `POST /api/jobs/retry` and `POST /api/jobs/cancel` body `{ status?, name?, transport?,
 *   priority?, createdAfter?, createdBefore? }` with at least one field ({@link parseJobFilterBody});
 * - `POST /api/jobs/purge` body `{ status?, olderThan? | finishedBefore?, name?, limit? }` with a
 *   status or an age bound ({@link parsePurgeBody});
 * - `POST /api/jobs/{jobId}/cancel` and `POST /api/schedules/{name}/pause|resume|trigger` body
 *   empty or `{}` ({@link parseNoFieldsBody}).
 * @module
 */
import { type FieldIssue, ValidationError } from '../errors.js';
import { parseDuration } from '../operations/duration.js';
import { isStorableInstant, parseInstant } from '../operations/instant.js';
import type { RetryOptions } from '../operations/retry.js';
import { FINISHED_JOB_STATUSES, JOB_STATUSES } from '../operations/statuses.js';
import { isPriority } from '../priority.js';
import type { JobStatus, ListJobsFilter, PurgeFilter } from '../store.js';
import { MAX_JOB_PAGE } from '../store.js';

const FILTER_FIELDS = [
  'status',
  'name',
  'transport',
  'priority',
  'createdAfter',
  'createdBefore',
] as const;
const MAX_TEXT = 256;
/** Cursors and task ids embed job ids, which may be longer than a name. */
const MAX_ID = 1024;

class Issues {
  readonly list: FieldIssue[] = [];
  add(path: string, message: string): undefined {
    this.list.push({ path, message });
    return undefined;
  }
  throwIfAny(what: string): void {
    if (this.list.length > 0)
      throw new ValidationError(
        `invalid ${what}: ${this.list.map((i) => i.path || '(body)').join(', ')}`,
        this.list,
      );
  }
}

const absent = (value: unknown) => value === undefined || value === null || value === '';

function statuses(
  value: unknown,
  field: string,
  issues: Issues,
  allowed: readonly JobStatus[] = JOB_STATUSES,
): JobStatus[] | undefined {
  if (absent(value)) return undefined;
  const list =
    typeof value === 'string'
      ? value.split(',').map((s) => s.trim())
      : Array.isArray(value)
        ? value
        : [value];
  const bad = list.filter((s) => !allowed.includes(s as JobStatus));
  if (bad.length > 0 || list.length === 0)
    return issues.add(field, `must be one or more of ${allowed.join(', ')}`);
  return [...new Set(list as JobStatus[])];
}

/** Text a store can hold: a string, not too long, without U+0000 (which no database stores). */
function text(value: unknown, field: string, issues: Issues, max = MAX_TEXT): string | undefined {
  if (absent(value)) return undefined;
  if (typeof value !== 'string' || value.length > max || value.includes('\u0000'))
    return issues.add(field, `must be a string of at most ${max} characters without U+0000`);
  return value;
}

/** An ISO 8601 date or date-time within the years 0001–9999 ({@link parseInstant}). */
function date(value: unknown, field: string, issues: Issues): Date | undefined {
  if (absent(value)) return undefined;
  const parsed = typeof value === 'string' ? parseInstant(value) : undefined;
  if (!parsed)
    return issues.add(
      field,
      'must be an ISO 8601 date or date-time of the years 0001–9999, e.g. 2026-01-31T12:00:00Z',
    );
  return parsed;
}

function count(value: unknown, field: string, issues: Issues, max: number): number | undefined {
  if (absent(value)) return undefined;
  const n = typeof value === 'string' && /^\d{1,12}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max)
    return issues.add(field, `must be an integer from 1 to ${max}`);
  return n;
}

function filterFields(
  get: (key: string) => unknown,
  issues: Issues,
  allowed: readonly JobStatus[] = JOB_STATUSES,
): ListJobsFilter {
  const status = statuses(get('status'), 'status', issues, allowed);
  const name = text(get('name'), 'name', issues);
  const transport = text(get('transport'), 'transport', issues);
  const rawPriority = get('priority');
  const priority = absent(rawPriority)
    ? undefined
    : isPriority(rawPriority)
      ? rawPriority
      : issues.add('priority', 'must be high, normal or low');
  const createdAfter = date(get('createdAfter'), 'createdAfter', issues);
  const createdBefore = date(get('createdBefore'), 'createdBefore', issues);
  return {
    ...(status ? { status } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(transport !== undefined ? { transport } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(createdAfter ? { createdAfter } : {}),
    ...(createdBefore ? { createdBefore } : {}),
  };
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Every key outside `known` is an issue, a snake_case spelling of a known one with a hint. */
function unknownKeys(keys: Iterable<string>, known: readonly string[], issues: Issues) {
  for (const issue of unknownKeyIssues(keys, known)) issues.add(issue.path, issue.message);
}

/**
 * An issue for every key outside `known` (each once), a snake_case spelling of a known one with a
 * hint: a misspelt parameter is refused, never ignored into a wider request.
 */
export function unknownKeyIssues(keys: Iterable<string>, known: readonly string[]): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const key of new Set(keys)) {
    if (known.includes(key)) continue;
    const hint = camel(key);
    issues.push({
      path: key,
      message:
        hint !== key && known.includes(hint)
          ? `is not a field of this request; did you mean ${hint}?`
          : known.length === 0
            ? 'is not a field of this request; it takes none'
            : `is not a field of this request; fields are ${known.join(', ')}`,
    });
  }
  return issues;
}

/**
 * A query parameter's value, undefined when absent. A repeated parameter is its values joined with
 * commas, the way a list is written (`status=failed&status=running` is `failed,running`), so a
 * parameter that takes one value is refused by its own check rather than read as its first value.
 */
export function queryValue(query: URLSearchParams, key: string): string | undefined {
  const all = query.getAll(key);
  return all.length > 1 ? all.join(',') : all[0];
}

/**
 * The job list's query: every parameter of {@link ListJobsFilter}; any other is refused, so a
 * misspelt filter never silently lists everything.
 * @throws ValidationError naming each bad query parameter.
 */
export function parseListJobsQuery(query: URLSearchParams): ListJobsFilter {
  const issues = new Issues();
  unknownKeys(query.keys(), [...FILTER_FIELDS, 'cursor', 'limit'], issues);
  const get = (key: string) => queryValue(query, key);
  const filter = filterFields(get, issues);
  const cursor = text(get('cursor'), 'cursor', issues, MAX_ID);
  const limit = count(get('limit'), 'limit', issues, MAX_JOB_PAGE);
  issues.throwIfAny('job list query');
  return {
    ...filter,
    ...(cursor !== undefined ? { cursor } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
}

function objectBody(body: unknown, what: string): Record<string, unknown> {
  if (body === undefined) return {}; // an empty body; JSON `null` is not an object
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ValidationError(`invalid ${what}`, [{ path: '', message: 'must be a JSON object' }]);
  return body as Record<string, unknown>;
}

/**
 * The body of a route that takes no fields (a job's cancel, the schedule actions): empty or `{}`.
 * Any field is refused like a misspelt one elsewhere, never ignored.
 * @throws ValidationError naming each field, or the body when it is not an object.
 */
export function parseNoFieldsBody(body: unknown, what: string): void {
  const issues = new Issues();
  unknownKeys(Object.keys(objectBody(body, what)), [], issues);
  issues.throwIfAny(what);
}

/** Options of {@link parseJobFilterBody}. */
export interface JobFilterBodyOptions {
  /** The statuses the operation can act on (others are refused). @defaultValue every status */
  statuses?: readonly JobStatus[];
}

/**
 * A bulk operation's filter. At least one field is required: an empty body must not act on every
 * job (send the statuses explicitly to mean "all").
 * @throws ValidationError naming each bad field.
 */
export function parseJobFilterBody(
  body: unknown,
  options: JobFilterBodyOptions = {},
): ListJobsFilter {
  const fields = objectBody(body, 'job filter');
  const issues = new Issues();
  unknownKeys(Object.keys(fields), FILTER_FIELDS, issues);
  const filter = filterFields((key) => fields[key], issues, options.statuses);
  if (issues.list.length === 0 && Object.keys(filter).length === 0)
    issues.add(
      '',
      `give at least one of ${FILTER_FIELDS.join(', ')}: an empty filter matches every job`,
    );
  issues.throwIfAny('job filter');
  return filter;
}

/** @throws ValidationError naming each bad field. */
export function parseRetryBody(body: unknown): RetryOptions {
  const fields = objectBody(body, 'retry request');
  const issues = new Issues();
  unknownKeys(Object.keys(fields), ['stage', 'taskIds'], issues);
  const { stage, taskIds } = fields;
  if (
    stage !== undefined &&
    !(
      typeof stage === 'string' &&
      stage.length > 0 &&
      stage.length <= MAX_TEXT &&
      !stage.includes('\u0000')
    ) &&
    !(typeof stage === 'number' && Number.isInteger(stage) && stage >= 0)
  )
    issues.add('stage', 'must be a stage name or a non-negative index');
  if (
    taskIds !== undefined &&
    !(
      Array.isArray(taskIds) &&
      taskIds.length > 0 &&
      taskIds.length <= 10_000 &&
      taskIds.every(
        (id) =>
          typeof id === 'string' && id.length > 0 && id.length <= MAX_ID && !id.includes('\u0000'),
      )
    )
  )
    issues.add('taskIds', 'must be a non-empty array of task ids (at most 10000)');
  issues.throwIfAny('retry request');
  return {
    ...(stage !== undefined ? { stage: stage as string | number } : {}),
    ...(taskIds !== undefined ? { taskIds: taskIds as string[] } : {}),
  };
}

/**
 * A purge's filter. A status or an age bound (`olderThan`, a duration such as `"7d"`, or
 * `finishedBefore`, a date) is required, so an empty body cannot delete every finished job;
 * without an age bound the jobs finished before now match.
 * @throws ValidationError naming each bad field.
 */
export function parsePurgeBody(body: unknown, now = new Date()): PurgeFilter {
  const fields = objectBody(body, 'purge request');
  const issues = new Issues();
  unknownKeys(
    Object.keys(fields),
    ['status', 'olderThan', 'finishedBefore', 'name', 'limit'],
    issues,
  );
  const status = statuses(fields.status, 'status', issues, FINISHED_JOB_STATUSES);
  const name = text(fields.name, 'name', issues);
  const limit = count(fields.limit, 'limit', issues, 1_000_000_000);
  let finishedBefore = date(fields.finishedBefore, 'finishedBefore', issues);
  const { olderThan } = fields;
  if (!absent(olderThan)) {
    if (!absent(fields.finishedBefore))
      issues.add('olderThan', 'give olderThan or finishedBefore, not both');
    else if (typeof olderThan !== 'string' && typeof olderThan !== 'number')
      issues.add('olderThan', "must be a duration such as '7d', '12h', '30m' or milliseconds");
    else
      try {
        finishedBefore = new Date(now.getTime() - parseDuration(olderThan, 'olderThan'));
        // The bound it computes must be a date like any given one (years 0001–9999): a million
        // days back is a JavaScript Date, but not one a store holds.
        if (!isStorableInstant(finishedBefore.getTime()))
          issues.add('olderThan', 'reaches back before the year 0001');
      } catch (err) {
        for (const issue of (err as ValidationError).issues ?? [])
          issues.add(issue.path, issue.message);
      }
  }
  if (absent(fields.status) && absent(olderThan) && absent(fields.finishedBefore))
    issues.add(
      '',
      'give status, olderThan or finishedBefore: a purge without one would delete every finished job',
    );
  issues.throwIfAny('purge request');
  return {
    finishedBefore: finishedBefore ?? now,
    ...(status ? { status } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
}
