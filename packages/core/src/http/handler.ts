import type { Switchyard } from '../engine/api.js';
import type { SubmitOptions } from '../engine/types.js';
import { type FieldIssue, isSwitchyardError, SwitchyardError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import { INSTANT_RANGE, parseInstant } from '../operations/instant.js';
import type { RetryResult } from '../operations/retry.js';
import { CANCELLABLE_STATUSES, RETRYABLE_STATUSES } from '../operations/statuses.js';
import { isPriority } from '../priority.js';
import type { ListTasksOptions, TaskStatus } from '../store.js';
import { checkBearer, checkHmac, checkHmacHeaders, type HttpAuth } from './auth.js';
import {
  parseJobFilterBody,
  parseListJobsQuery,
  parseNoFieldsBody,
  parsePurgeBody,
  parseRetryBody,
  queryValue,
  unknownKeyIssues,
} from './operations-params.js';

/** Options of {@link createHttpHandler}. */
export interface HttpHandlerOptions {
  /** Required: how callers authenticate (`{ none: true }` opts out explicitly). */
  auth: HttpAuth;
  /** Largest accepted request body, bytes. @defaultValue 1048576 (1 MiB) */
  maxBodyBytes?: number;
  /** Deepest accepted JSON nesting of a request body. @defaultValue 64 */
  maxJsonDepth?: number;
  /** Prefix in front of every route, e.g. `/switchyard`. @defaultValue `''` */
  basePath?: string;
  /**
   * Boolean body fields that pick a transport, by field name: with
   * `{ fast: { whenTrue: 'servicebus', whenFalse: 'storagequeue' } }` a submit body
   * `{ "n": 1, "fast": true }` runs on `servicebus`. A flag is an option key like `transport` (it
   * is removed from inline params and allowed next to `params`); `transport` wins over a flag; two
   * flags that pick different transports are a 400. A flag set to a value it has no transport for
   * is a 400 `UNKNOWN_TRANSPORT`. Flag names must be plain identifiers other than the built-in
   * option keys (`params`, `transport`, `idempotencyKey`).
   * @defaultValue `{}` (no flags)
   * @throws SwitchyardError `CONFIG_ERROR` from {@link createHttpHandler} for a bad flag name or value
   */
  transportFlags?: Readonly<Record<string, TransportFlag>>;
  /** `/healthz` and `/readyz` answer without authentication (probes carry no credentials). @defaultValue true */
  publicProbes?: boolean;
  logger?: Logger;
}

/** What one of {@link HttpHandlerOptions.transportFlags} selects for each value. */
export interface TransportFlag {
  /** Transport name that `true` selects. */
  whenTrue?: string;
  /** Transport name that `false` selects. */
  whenFalse?: string;
}

/** Body of every error response. */
export interface HttpErrorBody {
  error: { code: string; message: string; details?: unknown };
}

const SCHEDULE_ACTIONS = new Set(['pause', 'resume', 'trigger'] as const);
type ScheduleAction = typeof SCHEDULE_ACTIONS extends Set<infer A> ? A : never;
const BULK_ACTIONS = new Set(['retry', 'cancel', 'purge'] as const);
type BulkAction = typeof BULK_ACTIONS extends Set<infer A> ? A : never;
/** Keys of a submit body that are options, not job params (transport flags join them). */
const OPTION_KEYS = [
  'params',
  'transport',
  'idempotencyKey',
  'runAt',
  'delayMs',
  'deadlineMs',
  'priority',
] as const;
const FLAG_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const TASK_STATUSES = new Set<TaskStatus>([
  'pending',
  'running',
  'succeeded',
  'failed',
  'cancelled',
]);
const MAX_ID_LENGTH = 256;
const TASK_QUERY_KEYS = ['stage', 'status', 'cursor', 'limit'];

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * The request body broke off before its end: the client closed the connection mid-body. That is the
 * client's doing, not a server failure, so it is logged at debug only (a client that hangs up on
 * purpose must not flood the error log) and the request goes no further; its answer is for a
 * client that is most likely gone.
 */
class RequestAborted extends HttpError {
  constructor(readonly reason: string) {
    super(400, 'REQUEST_ABORTED', 'the request body ended before it was complete');
  }
}

type Route =
  | { name: 'submit'; jobName: string }
  | { name: 'status'; jobId: string }
  | { name: 'metrics' }
  | { name: 'tasks'; jobId: string }
  | { name: 'cancel'; jobId: string }
  | { name: 'jobs' }
  | { name: 'retry'; jobId: string }
  | { name: 'bulk'; action: BulkAction }
  | { name: 'schedules' }
  | { name: 'schedule'; schedule: string; action: ScheduleAction }
  | { name: 'healthz' }
  | { name: 'readyz' };

interface Matched {
  route: Route;
  method: 'GET' | 'POST';
}

/**
 * Creates Switchyard's HTTP API as a framework-free Web `Request` → `Response` function, usable
 * from node:http (see `examples/container`), Azure Functions v4, or any fetch-style server.
 *
 * Routes:
 * - `POST /api/jobs/submit/{jobName}` — body `application/json`. Either the params themselves,
 *   e.g. `{ "n": 100 }`, optionally mixed with the option keys `transport`, `idempotencyKey`, `runAt` (ISO 8601),
 *   `delayMs`, `deadlineMs` (a delayed job answers `status: "scheduled"`), `priority`
 *   (`"high"`, `"normal"` or `"low"`) and
 *   the configured {@link HttpHandlerOptions.transportFlags} (removed before validation); or the
 *   envelope `{ "params": {…}, "transport"?, "idempotencyKey"?, <flag>? }`. A body with a top-level
 *   `params` key is always the envelope: any other key next to it that is not an option key is a
 *   400 `INVALID_INPUT` naming it (a misspelt option never silently drops the params; a job whose
 *   params have a `params` field uses the envelope). An empty body means `{}`. `transport` names
 *   the path; a transport flag picks one by its boolean value; `transport` wins when both are
 *   given. The `Idempotency-Key` header works like `idempotencyKey`. 202 `{ jobId, status, statusUrl,
 *   transport, created }` on create, 200 with the same body when the job existed. Job identity is
 *   name + params (or the key), not the path: resubmitting an existing job while naming another
 *   path is 409 `JOB_EXISTS_ON_OTHER_PATH` (give an `idempotencyKey` to run the workload again).
 * - `GET /api/jobs/status/{jobId}` — the job view (status, current stage, per-stage counts, timings,
 *   path, result or error).
 * - `GET /api/metrics/comparison` — per-path metrics.
 * - `GET /api/jobs/{jobId}/tasks?stage=&status=&cursor=&limit=` — a page of tasks; `stage` is an
 *   index or a stage name, `limit` 1–1000 (default 100); follow `nextCursor`; any other parameter,
 *   or one given twice, is a 400 naming it.
 * - `POST /api/jobs/{jobId}/cancel` — body empty or `{}`: `{ jobId, cancelled, status }`.
 * - `GET /api/jobs?status=&name=&transport=&createdAfter=&createdBefore=&cursor=&limit=` — a page
 *   of jobs `{ jobs, nextCursor? }`, newest first (keyset cursor: follow `nextCursor`); `status`
 *   may list several (comma-separated or repeated), `limit` 1–500 (default 50), the dates
 *   ISO 8601; any other parameter is a 400 naming it.
 * - `POST /api/jobs/{jobId}/retry` — body `{ "stage"?: name | index, "taskIds"?: [id, …] }` (or
 *   empty): re-runs the job's failed tasks (of that stage, or those tasks; by default the latest
 *   stage with failed tasks) and the job runs on from there: `{ jobId, retried, status }`. 409
 *   `NOTHING_TO_RETRY` (details: `{ jobId, status }`) when nothing re-opened: the job is
 *   cancelled, has not started, or has no failed task there.
 * - `POST /api/jobs/retry`, `POST /api/jobs/cancel` — body: the filter `{ status?, name?,
 *   transport?, createdAfter?, createdBefore? }`, at least one field (an empty filter would act on
 *   every job): retry answers `{ jobs, retried }` (default status `failed`; `failed`, `succeeded`,
 *   `running` allowed), cancel `{ cancelled }` (`scheduled`, `queued`, `running` allowed).
 * - `POST /api/jobs/purge` — body `{ status?, olderThan? | finishedBefore?, name?, limit? }` with a
 *   status or an age bound (`olderThan` a duration such as `"7d"`, `finishedBefore` a date):
 *   deletes matching finished jobs in small batches, `{ jobs, tasks }`.
 * - `GET /api/schedules` — `{ schedules }`, each with its last and next fire;
 *   `POST /api/schedules/{name}/pause|resume` — `{ schedule, paused }`;
 *   `POST /api/schedules/{name}/trigger` — 202 with the submitted job (404 `UNKNOWN_SCHEDULE`);
 *   their body empty or `{}`.
 * - `GET /healthz` (liveness, no I/O), `GET /readyz` (store and transports; 503 when one fails).
 *
 * Ids and keys are text: a job id or idempotency key containing U+0000 (which no store can hold)
 * is a 400 `INVALID_INPUT` naming the field, never a backend error.
 *
 * `HEAD` is answered wherever `GET` is, with the status and headers `GET` would have and no body.
 * With `auth: { hmacKey }`, a request without valid signature headers is a 401 before its body is
 * read.
 *
 * Every error is `{ error: { code, message, details? } }` with no stack trace: 400
 * `MALFORMED_JSON` / `INVALID_INPUT` (details: the field issues) / `UNKNOWN_TRANSPORT` /
 * `REQUEST_ABORTED` (the body broke off: the client hung up; logged at debug only), 401
 * `UNAUTHORIZED`, 404 `NOT_FOUND` / `UNKNOWN_JOB` / `JOB_NOT_FOUND`, 405 `METHOD_NOT_ALLOWED`, 409
 * `JOB_EXISTS_ON_OTHER_PATH` / `NOTHING_TO_RETRY`, 413
 * `PAYLOAD_TOO_LARGE`, 415 `UNSUPPORTED_MEDIA_TYPE`, 500 `INTERNAL`, 503 `UNAVAILABLE`.
 * The returned function never throws or rejects.
 */
export function createHttpHandler(
  yard: Switchyard,
  options: HttpHandlerOptions,
): (request: Request) => Promise<Response> {
  const auth = validateAuth(options.auth);
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const maxDepth = options.maxJsonDepth ?? 64;
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const logger = options.logger ?? consoleLogger;
  const publicProbes = options.publicProbes ?? true;
  const flags = validateFlags(options.transportFlags ?? {});
  const optionKeys = new Set<string>([...OPTION_KEYS, ...Object.keys(flags)]);

  const authenticate = async (
    request: Request,
    url: URL,
    readBody: () => Promise<string>,
  ): Promise<boolean> => {
    if ('none' in auth) return true;
    if ('bearerTokens' in auth)
      return checkBearer(request.headers.get('authorization'), auth.bearerTokens);
    // The signature covers the body, so a signed request is read before it is verified; one
    // without valid signature headers is refused first, its body unread (no 413 or 400 for it).
    const maxSkewMs = auth.maxSkewMs ?? 300_000;
    const reason =
      checkHmacHeaders(request.headers, maxSkewMs) ??
      checkHmac(
        request.headers,
        request.method,
        url.pathname + url.search,
        await readBody(),
        auth.hmacKey,
        maxSkewMs,
      );
    if (reason) logger.debug('HTTP request rejected', { reason });
    return reason === undefined;
  };

  const resolveTransport = (body: Record<string, unknown>): string | undefined => {
    const { transport } = body;
    if (transport !== undefined) {
      if (typeof transport !== 'string' || transport.length === 0 || transport.length > 100)
        throw invalid('transport', 'must be a transport name');
      return transport;
    }
    let picked: { flag: string; transport: string } | undefined;
    for (const [flag, choice] of Object.entries(flags)) {
      const value = Object.hasOwn(body, flag) ? body[flag] : undefined;
      if (value === undefined) continue;
      if (typeof value !== 'boolean') throw invalid(flag, 'must be true or false');
      const name = value ? choice.whenTrue : choice.whenFalse;
      if (name === undefined)
        throw new HttpError(
          400,
          'UNKNOWN_TRANSPORT',
          `${flag}: ${value} selects no transport configured here`,
        );
      if (picked && picked.transport !== name)
        throw new HttpError(
          400,
          'INVALID_INPUT',
          `${picked.flag} and ${flag} pick different transports`,
          [{ path: flag, message: `conflicts with ${picked.flag}` }],
        );
      picked = { flag, transport: name };
    }
    return picked?.transport;
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    // HEAD is GET without the body (RFC 9110 §9.3.2): it is routed as GET, the body dropped below.
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const matched = match(url.pathname, basePath);
    let bodyText: Promise<string> | undefined;
    const readBody = () => {
      bodyText ??= readText(request, maxBodyBytes);
      return bodyText;
    };
    /** The JSON body, undefined when empty; any other media type is a 415. */
    const readJson = async (): Promise<unknown> => {
      const text = await readBody();
      if (text.trim().length === 0) return undefined;
      if (!isJsonContentType(request.headers.get('content-type')))
        throw new HttpError(
          415,
          'UNSUPPORTED_MEDIA_TYPE',
          'the request body must be application/json',
        );
      return parseJson(text, maxDepth);
    };
    const isProbe = matched?.route.name === 'healthz' || matched?.route.name === 'readyz';
    // Authenticate before routing answers anything, so an anonymous caller learns nothing and
    // reaches nothing; only the probes are public (when enabled).
    const authed = await authenticate(request, url, readBody);
    if (!authed && !(isProbe && publicProbes))
      throw new HttpError(
        401,
        'UNAUTHORIZED',
        'authentication required',
        undefined,
        'bearerTokens' in auth ? { 'www-authenticate': 'Bearer' } : {},
      );
    if (!matched) throw new HttpError(404, 'NOT_FOUND', `no route for ${url.pathname}`);
    if (method !== matched.method) {
      const allow = matched.method === 'GET' ? 'GET, HEAD' : matched.method;
      throw new HttpError(
        405,
        'METHOD_NOT_ALLOWED',
        `${request.method} is not allowed here; use ${allow}`,
        undefined,
        { allow },
      );
    }
    const route = matched.route;
    switch (route.name) {
      case 'healthz':
        return json(200, { ok: true });
      case 'readyz': {
        const state = await yard.ready();
        // Anonymous probes see which check failed, never the error text (host names and such).
        const checks = authed
          ? state.checks
          : Object.fromEntries(Object.entries(state.checks).map(([k, v]) => [k, { ok: v.ok }]));
        return json(state.ok ? 200 : 503, { ok: state.ok, checks });
      }
      case 'metrics':
        return json(200, await yard.metrics());
      case 'status': {
        checkText('jobId', route.jobId);
        const job = await yard.getJob(route.jobId);
        if (!job) throw jobNotFound(route.jobId);
        return json(200, job);
      }
      case 'cancel': {
        // No fields, but the body is read under the rules of every POST (413, 415, JSON, no
        // unknown field): a body the route would ignore is refused, not taken as understood.
        parseNoFieldsBody(await readJson(), 'cancel request');
        checkText('jobId', route.jobId);
        const job = await yard.getJob(route.jobId);
        if (!job) throw jobNotFound(route.jobId);
        const cancelled = await yard.cancel(route.jobId);
        const after = await yard.getJob(route.jobId);
        return json(200, { jobId: route.jobId, cancelled, status: after?.status ?? job.status });
      }
      case 'tasks':
        checkText('jobId', route.jobId);
        return json(200, await listTasks(yard, route.jobId, url.searchParams));
      case 'jobs':
        return json(200, await yard.listJobs(parseListJobsQuery(url.searchParams)));
      case 'retry': {
        const options = parseRetryBody(await readJson());
        checkText('jobId', route.jobId);
        const job = await yard.store.getJob(route.jobId);
        if (!job) throw jobNotFound(route.jobId);
        if (typeof options.stage === 'number' && options.stage >= job.stageCount)
          throw invalid('stage', `job ${job.id} has ${job.stageCount} stage(s)`);
        const result = await yard.retry(route.jobId, options);
        if (result.retried === 0) throw nothingToRetry(result);
        return json(200, result);
      }
      case 'bulk': {
        const body = await readJson();
        if (route.action === 'purge') return json(200, await yard.purge(parsePurgeBody(body)));
        if (route.action === 'retry')
          return json(
            200,
            await yard.retryJobs(parseJobFilterBody(body, { statuses: RETRYABLE_STATUSES })),
          );
        return json(
          200,
          await yard.cancelJobs(parseJobFilterBody(body, { statuses: CANCELLABLE_STATUSES })),
        );
      }
      case 'schedules':
        return json(200, { schedules: await yard.listSchedules() });
      case 'schedule': {
        parseNoFieldsBody(await readJson(), `schedule ${route.action} request`); // as cancel's
        if (route.action === 'trigger')
          return json(202, await yard.triggerSchedule(route.schedule));
        await (route.action === 'pause' ? yard.pauseSchedule : yard.resumeSchedule).call(
          yard,
          route.schedule,
        );
        return json(200, { schedule: route.schedule, paused: route.action === 'pause' });
      }
      case 'submit': {
        if (!yard.jobs.has(route.jobName))
          throw new HttpError(404, 'UNKNOWN_JOB', `unknown job "${route.jobName}"`, {
            known: [...yard.jobs.keys()],
          });
        const parsed = await readJson();
        const body = parsed === undefined ? {} : parsed; // `null` is not an empty body
        if (!isPlainObject(body))
          throw new HttpError(400, 'INVALID_INPUT', 'the request body must be a JSON object', [
            { path: '', message: 'expected an object' },
          ]);
        const envelope = Object.hasOwn(body, 'params');
        if (envelope) {
          const unknown = Object.keys(body).filter((k) => !optionKeys.has(k));
          if (unknown.length > 0)
            throw new HttpError(
              400,
              'INVALID_INPUT',
              `unknown option ${unknown.map((k) => `"${k}"`).join(', ')} next to "params"`,
              unknown.map((k) => ({
                path: k,
                message: `is not an option; options are ${[...optionKeys].filter((o) => o !== 'params').join(', ')}`,
              })),
            );
        }
        const params = envelope
          ? body.params
          : Object.fromEntries(Object.entries(body).filter(([k]) => !optionKeys.has(k)));
        const submitOptions: SubmitOptions = {};
        const transport = resolveTransport(body);
        if (transport !== undefined) submitOptions.transport = transport;
        const key = body.idempotencyKey ?? request.headers.get('idempotency-key') ?? undefined;
        if (key !== undefined) {
          if (typeof key !== 'string') throw invalid('idempotencyKey', 'must be a string');
          checkText('idempotencyKey', key);
          submitOptions.idempotencyKey = key;
        }
        Object.assign(submitOptions, submitTiming(body));
        const result = await yard.submit(route.jobName, params as never, submitOptions);
        // Identity is job name + params (or the key), not the path: the same workload asked for
        // on another path is a conflict, not a silent answer from the first path.
        if (!result.created && transport !== undefined && result.transport !== transport)
          throw new HttpError(
            409,
            'JOB_EXISTS_ON_OTHER_PATH',
            `an identical job exists on path "${result.transport}"; give an idempotencyKey to run it again on "${transport}"`,
            { jobId: result.jobId, transport: result.transport },
          );
        const statusUrl = `${basePath}/api/jobs/status/${encodeURIComponent(result.jobId)}`;
        return json(
          result.created ? 202 : 200,
          {
            jobId: result.jobId,
            status: result.status,
            statusUrl,
            transport: result.transport,
            created: result.created,
          },
          { location: statusUrl },
        );
      }
    }
  };

  return async (request: Request): Promise<Response> => {
    let response: Response;
    try {
      response = await handle(request);
    } catch (err) {
      response = errorResponse(err, logger);
    }
    if (request.method !== 'HEAD') return response;
    // The status and headers GET would have, errors included; never a body.
    await response.body?.cancel();
    return new Response(null, { status: response.status, headers: response.headers });
  };
}

function validateAuth(auth: HttpAuth | undefined): HttpAuth {
  const fail = (message: string) => {
    throw new SwitchyardError('CONFIG_ERROR', message, {
      issues: [{ path: 'auth', message }],
    });
  };
  if (!auth || typeof auth !== 'object') fail('createHttpHandler: options.auth is required');
  const a = auth as Record<string, unknown>;
  if ('none' in a) {
    if (a.none !== true) fail('createHttpHandler: auth.none must be true');
  } else if ('bearerTokens' in a) {
    const tokens = a.bearerTokens;
    if (
      !Array.isArray(tokens) ||
      tokens.length === 0 ||
      tokens.some((t) => typeof t !== 'string' || t.length < 16)
    )
      fail('createHttpHandler: auth.bearerTokens must list tokens of at least 16 characters');
  } else if ('hmacKey' in a) {
    if (typeof a.hmacKey !== 'string' || a.hmacKey.length < 16)
      fail('createHttpHandler: auth.hmacKey must be at least 16 characters');
  } else fail('createHttpHandler: auth must be { bearerTokens }, { hmacKey } or { none: true }');
  return auth as HttpAuth;
}

function validateFlags(
  flags: Readonly<Record<string, TransportFlag>>,
): Readonly<Record<string, TransportFlag>> {
  const issues: FieldIssue[] = [];
  for (const [name, flag] of Object.entries(flags)) {
    const path = `transportFlags.${name}`;
    if (!FLAG_NAME.test(name) || (OPTION_KEYS as readonly string[]).includes(name))
      issues.push({
        path,
        message: 'must be an identifier other than params, transport, idempotencyKey',
      });
    const values = [flag?.whenTrue, flag?.whenFalse];
    if (typeof flag !== 'object' || flag === null || values.every((v) => v === undefined))
      issues.push({ path, message: 'must name a transport for true, false or both' });
    else if (values.some((v) => v !== undefined && (typeof v !== 'string' || v.length === 0)))
      issues.push({ path, message: 'whenTrue / whenFalse must be transport names' });
  }
  if (issues.length > 0)
    throw new SwitchyardError('CONFIG_ERROR', 'createHttpHandler: invalid transportFlags', {
      issues,
    });
  return flags;
}

/** Text no store can hold (U+0000) is bad input, rejected here rather than by the database. */
function checkText(path: string, value: string): void {
  if (value.includes('\u0000')) throw invalid(path, 'must not contain the character U+0000');
}

function match(pathname: string, basePath: string): Matched | undefined {
  if (basePath) {
    if (pathname !== basePath && !pathname.startsWith(`${basePath}/`)) return undefined;
    pathname = pathname.slice(basePath.length);
  }
  const raw = pathname.split('/').slice(1);
  if (raw.length === 0 || raw.some((s) => s.length === 0)) return undefined;
  const parts: string[] = [];
  for (const segment of raw) {
    try {
      parts.push(decodeURIComponent(segment));
    } catch {
      return undefined;
    }
  }
  if (parts.some((p) => p.length > MAX_ID_LENGTH)) return undefined;
  const [a, b, c, d] = parts;
  if (parts.length === 1 && a === 'healthz') return { route: { name: 'healthz' }, method: 'GET' };
  if (parts.length === 1 && a === 'readyz') return { route: { name: 'readyz' }, method: 'GET' };
  if (a !== 'api') return undefined;
  if (parts.length === 3 && b === 'metrics' && c === 'comparison')
    return { route: { name: 'metrics' }, method: 'GET' };
  if (b === 'schedules' && parts.length === 2)
    return { route: { name: 'schedules' }, method: 'GET' };
  const action = d as ScheduleAction;
  if (b === 'schedules' && parts.length === 4 && SCHEDULE_ACTIONS.has(action))
    return { route: { name: 'schedule', schedule: c!, action }, method: 'POST' };
  if (b !== 'jobs') return undefined;
  if (parts.length === 2) return { route: { name: 'jobs' }, method: 'GET' };
  const bulk = c as BulkAction;
  if (parts.length === 3 && BULK_ACTIONS.has(bulk))
    return { route: { name: 'bulk', action: bulk }, method: 'POST' };
  if (parts.length !== 4) return undefined;
  if (c === 'submit') return { route: { name: 'submit', jobName: d! }, method: 'POST' };
  if (c === 'status') return { route: { name: 'status', jobId: d! }, method: 'GET' };
  if (d === 'tasks') return { route: { name: 'tasks', jobId: c! }, method: 'GET' };
  if (d === 'cancel') return { route: { name: 'cancel', jobId: c! }, method: 'POST' };
  if (d === 'retry') return { route: { name: 'retry', jobId: c! }, method: 'POST' };
  return undefined;
}

/**
 * A page of a job's tasks. Its query is read like the job list's: any other parameter is a 400
 * naming it (a misspelt `state=failed` must not list every task), and a repeated one is its values
 * joined ({@link queryValue}), which no parameter here takes.
 */
async function listTasks(yard: Switchyard, jobId: string, query: URLSearchParams) {
  const job = await yard.store.getJob(jobId);
  if (!job) throw jobNotFound(jobId);
  const issues: FieldIssue[] = unknownKeyIssues(query.keys(), TASK_QUERY_KEYS);
  const options: ListTasksOptions = { limit: 100 };
  const stage = queryValue(query, 'stage');
  if (stage !== undefined) {
    const names = yard.jobs.get(job.name)?.stages.map((s) => s.name) ?? [];
    const index = /^\d{1,6}$/.test(stage) ? Number(stage) : names.indexOf(stage);
    if (index < 0 || index >= job.stageCount)
      issues.push({ path: 'stage', message: `not a stage of job "${job.name}"` });
    else options.stage = index;
  }
  const status = queryValue(query, 'status');
  if (status !== undefined) {
    if (TASK_STATUSES.has(status as TaskStatus)) options.status = status as TaskStatus;
    else
      issues.push({ path: 'status', message: `must be one of ${[...TASK_STATUSES].join(', ')}` });
  }
  const limit = queryValue(query, 'limit');
  if (limit !== undefined) {
    if (/^\d{1,4}$/.test(limit) && Number(limit) >= 1 && Number(limit) <= 1000)
      options.limit = Number(limit);
    else issues.push({ path: 'limit', message: 'must be an integer from 1 to 1000' });
  }
  const cursor = queryValue(query, 'cursor');
  if (cursor !== undefined) {
    if (cursor.length > 0 && cursor.length <= 1024) options.cursor = cursor;
    else issues.push({ path: 'cursor', message: 'must be a cursor from a previous page' });
  }
  if (issues.length > 0)
    throw new HttpError(400, 'INVALID_INPUT', 'invalid query parameters', issues);
  const page = await yard.store.listTasks(jobId, options);
  return page.nextCursor === undefined
    ? { tasks: page.tasks }
    : { tasks: page.tasks, nextCursor: page.nextCursor };
}

/** Reads the body as UTF-8 text, refusing more than `max` bytes whatever Content-Length says. */
async function readText(request: Request, max: number): Promise<string> {
  const tooLarge = () =>
    new HttpError(413, 'PAYLOAD_TOO_LARGE', `the request body exceeds ${max} bytes`);
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > max) throw tooLarge();
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (err) {
      throw new RequestAborted(err instanceof Error ? err.message : String(err));
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, 'MALFORMED_JSON', 'the request body is not valid UTF-8');
  }
}

function isJsonContentType(header: string | null): boolean {
  if (!header) return false;
  const type = header.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

function parseJson(text: string, maxDepth: number): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'MALFORMED_JSON', `malformed JSON: ${(err as Error).message}`);
  }
  // Iterative, so a hostile depth cannot overflow the stack here; later recursive steps
  // (schema validation, canonical JSON) only ever see bounded depth.
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > maxDepth)
      throw new HttpError(400, 'INVALID_INPUT', `JSON nested deeper than ${maxDepth} levels`, [
        { path: '', message: `nesting deeper than ${maxDepth}` },
      ]);
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(path: string, message: string): HttpError {
  return new HttpError(400, 'INVALID_INPUT', `${path} ${message}`, [{ path, message }]);
}

/**
 * `runAt` (an ISO 8601 time), `delayMs`, `deadlineMs` and `priority` of a submit body. `runAt` is
 * ISO 8601 only (`new Date` would read `"1"` as the year 2001) within {@link INSTANT_RANGE}; the
 * engine checks the rest (signs, `delayMs` with `runAt`, when the job is due and its deadline
 * ends), naming the field.
 */
function submitTiming(body: Record<string, unknown>): SubmitOptions {
  const options: SubmitOptions = {};
  const { runAt, delayMs, deadlineMs, priority } = body;
  if (priority !== undefined) {
    if (!isPriority(priority)) throw invalid('priority', 'must be "high", "normal" or "low"');
    options.priority = priority;
  }
  if (runAt !== undefined) {
    const date = typeof runAt === 'string' ? parseInstant(runAt) : undefined;
    if (!date)
      throw invalid(
        'runAt',
        `must be an ISO 8601 date-time from ${INSTANT_RANGE.first} to ${INSTANT_RANGE.last}, e.g. 2026-01-31T12:00:00Z`,
      );
    options.runAt = date;
  }
  for (const [field, value] of [
    ['delayMs', delayMs],
    ['deadlineMs', deadlineMs],
  ] as const) {
    if (value === undefined) continue;
    if (typeof value !== 'number') throw invalid(field, 'must be a number of milliseconds');
    options[field] = value;
  }
  return options;
}

function jobNotFound(jobId: string): HttpError {
  return new HttpError(404, 'JOB_NOT_FOUND', `job ${jobId} not found`);
}

/** Why a retry re-opened nothing, from the job's status after the call. */
function nothingToRetry({ jobId, status }: RetryResult): HttpError {
  const reason =
    status === 'cancelled'
      ? 'is cancelled; a cancelled job is not retried'
      : status === 'scheduled' || status === 'queued'
        ? 'has not started'
        : status === 'running'
          ? 'is running: until it finishes, only failed tasks of its current stage can be retried, and it has none'
          : 'has no failed task there to retry';
  return new HttpError(409, 'NOTHING_TO_RETRY', `job ${jobId} ${reason}`, { jobId, status });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    },
  });
}

const STATUS_BY_CODE: Record<string, number> = {
  INVALID_INPUT: 400,
  NOT_SERIALIZABLE: 400,
  UNKNOWN_TRANSPORT: 400,
  UNKNOWN_JOB: 404,
  JOB_NOT_FOUND: 404,
  UNKNOWN_SCHEDULE: 404,
  CLOSED: 503,
  BACKEND_ERROR: 503,
  AUTH_FAILED: 503,
  SECRET_NOT_FOUND: 503,
  CONFIG_ERROR: 503,
};

function errorResponse(err: unknown, logger: Logger): Response {
  if (err instanceof RequestAborted)
    logger.debug('HTTP request aborted by the client', { error: err.reason });
  if (err instanceof HttpError) {
    const error: HttpErrorBody['error'] = { code: err.code, message: err.message };
    if (err.details !== undefined) error.details = err.details;
    return json(err.status, { error }, err.headers);
  }
  if (isSwitchyardError(err)) {
    const status = STATUS_BY_CODE[err.code] ?? 500;
    if (status >= 500) {
      // Backend trouble: log it, tell the caller only that it is temporary.
      logger.error('HTTP request failed', { code: err.code, error: err.message });
      return json(503, {
        error: { code: 'UNAVAILABLE', message: 'a backend is unavailable; retry later' },
      });
    }
    const error: HttpErrorBody['error'] = { code: err.code, message: err.message };
    if (err.issues) error.details = err.issues;
    return json(status, { error });
  }
  logger.error('HTTP request failed unexpectedly', {
    error: err instanceof Error ? err.message : String(err),
  });
  return json(500, { error: { code: 'INTERNAL', message: 'internal error' } });
}
