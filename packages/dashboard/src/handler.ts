import { randomBytes } from 'node:crypto';
import {
  JOB_STATUSES as ALL_JOB_STATUSES,
  consoleLogger,
  isSwitchyardError,
  type JobStatus,
  type Logger,
  parseInstant,
  type QueueKind,
  type TaskStatus,
} from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import { checkBearer, checkHmac, type HttpAuth, safeEqual } from '@switchyard/core/http';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { secureHeaders } from 'hono/secure-headers';
import { streamSSE } from 'hono/streaming';
import { type AppAssets, defaultAssetsDir, indexHtml, loadAssets } from './assets.js';
import { type DashboardYard, jobsOf, type ListJobsFilter, tasksOf } from './operations.js';
import { comparePaths, MetricsHistory, WINDOWS } from './paths.js';
import { sessionKeys } from './session.js';
import { jobDetail, jobHeader, progressOf } from './views.js';

/** Options of {@link createDashboardHandler}. */
export interface DashboardOptions {
  /**
   * How callers authenticate, exactly as for the HTTP API (`createHttpHandler`): API clients send
   * the bearer token or HMAC signature on every request; a browser signs in once with the token
   * (or the HMAC key) and then holds an `HttpOnly`, `SameSite=Strict` session cookie.
   */
  auth: HttpAuth;
  /** Where the dashboard is mounted, e.g. `/dashboard`. @defaultValue `''` */
  basePath?: string;
  /** Transports whose dead letters the Dead letters page lists and replays. @defaultValue none */
  transports?: Record<string, Transport> | readonly Transport[] | ReadonlyMap<string, Transport>;
  /**
   * Signs session cookies. Give the same secret to every instance behind one address.
   * @defaultValue random per process (sessions end when the process restarts)
   */
  sessionSecret?: string;
  /** How long a browser session lasts, ms. @defaultValue 28800000 (8 h) */
  sessionTtlMs?: number;
  /** Session cookie's `Secure` flag. @defaultValue `'auto'`: when the request came over https */
  secureCookie?: boolean | 'auto';
  /**
   * Live updates as Server-Sent Events. Turn off where the host buffers whole responses (Azure
   * Functions without HTTP streaming): `/api/live` then answers 501 and the page polls instead.
   * @defaultValue true
   */
  streaming?: boolean;
  /** How often live updates are sent, ms. @defaultValue 1000 */
  liveIntervalMs?: number;
  /** A live stream ends after this long and the browser reconnects, ms. @defaultValue 300000 */
  liveMaxMs?: number;
  /** Minimum interval between two `metrics()` reads, ms. @defaultValue 5000 */
  metricsSampleMs?: number;
  /** Largest accepted request body, bytes. @defaultValue 65536 */
  maxBodyBytes?: number;
  /** Folder of the bundled app (`app.js`, `app.css`). @defaultValue the package's `dist/app` */
  assetsDir?: string;
  /** @defaultValue `'Switchyard'` */
  title?: string;
  logger?: Logger;
}

/** A dashboard handler: a Web `Request` → `Response` function that never rejects. */
export type DashboardHandler = (request: Request) => Promise<Response>;

const SESSION_COOKIE = 'switchyard_session';
const CSRF_HEADER = 'x-csrf-token';
/** Core's list, so a status core adds (a delayed job's `scheduled`) is filterable here too. */
const JOB_STATUSES: ReadonlySet<JobStatus> = new Set(ALL_JOB_STATUSES);
const TASK_STATUSES = new Set<TaskStatus>([
  'pending',
  'running',
  'succeeded',
  'failed',
  'cancelled',
]);
const QUEUES = new Set<QueueKind>(['stage', 'task']);
const MAX_WATCHED_JOBS = 50;
const MAX_ID_LENGTH = 256;
/** Query parameters of `GET /api/jobs`. */
const JOBS_QUERY = [
  'status',
  'name',
  'transport',
  'created_after',
  'created_before',
  'cursor',
  'limit',
] as const;

/** The Content-Security-Policy of every response: same-origin scripts and styles only. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 500 | 501 | 503,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const notSupported = (operation: string) =>
  new ApiError(501, 'NOT_SUPPORTED', `this Switchyard does not offer ${operation}`);

const invalid = (field: string, rule: string) =>
  new ApiError(400, 'INVALID_INPUT', `${field} ${rule}`);

const jobNotFound = () => new ApiError(404, 'JOB_NOT_FOUND', 'no job with this id');

type Principal = { kind: 'session'; sessionId: string } | { kind: 'api' } | { kind: 'open' };
type Env = { Variables: { principal: Principal } };

/**
 * Creates the dashboard: the single-page app (Jobs, Job, Paths, Dead letters) and the JSON API it
 * calls, under `basePath`. Mount it in any host that speaks Web `Request`/`Response` — node:http
 * through a small adapter, Azure Functions v4, the CLI (`switchyard dashboard`), the demo.
 *
 * Routes (under `basePath`): `GET /` the app; `GET /assets/app.js|app.css`; `GET /api/session`;
 * `POST /api/login` `{ token }`; `POST /api/logout`; `GET /api/jobs?status=&name=&transport=&
 * created_after=&created_before=&cursor=&limit=`; `GET /api/jobs/:id`; `GET /api/jobs/:id/tasks?
 * status=&stage=&cursor=&limit=`; `POST /api/jobs/:id/cancel`; `POST /api/jobs/:id/retry`
 * `{ stage?, task_ids? }`; `GET /api/progress?ids=a,b`; `GET /api/paths?window=15m|1h|6h|24h|all`;
 * `GET /api/dead-letters?transport=&queue=&limit=`; `POST /api/dead-letters/replay`
 * `{ transport, queue, ids? }`; `GET /api/live?job=&jobs=a,b&paths=1&window=` (Server-Sent
 * Events: `job`, `progress`, `paths`). Any other query parameter or body field is a 400 naming it.
 *
 * Every error is `{ error: { code, message } }`: 400 `INVALID_INPUT` / `MALFORMED_JSON`, 401
 * `UNAUTHORIZED`, 403 `CSRF`, 404 `NOT_FOUND` / `JOB_NOT_FOUND`, 405 `METHOD_NOT_ALLOWED` (with
 * `Allow`), 413 `PAYLOAD_TOO_LARGE`, 415 `UNSUPPORTED_MEDIA_TYPE`, 500 `INTERNAL`, 501
 * `NOT_SUPPORTED` (a path without dead letters).
 * A state-changing request made with the session cookie must carry the `X-CSRF-Token` header from
 * `GET /api/session`; API clients authenticated per request need none.
 */
export function createDashboardHandler(
  yard: DashboardYard,
  options: DashboardOptions,
): DashboardHandler {
  const auth = options.auth;
  if (!auth || !('none' in auth || 'bearerTokens' in auth || 'hmacKey' in auth))
    throw new TypeError('createDashboardHandler: options.auth is required');
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const logger = options.logger ?? consoleLogger;
  const sessions = sessionKeys({
    secret: options.sessionSecret ?? randomBytes(32).toString('hex'),
    ttlMs: options.sessionTtlMs ?? 8 * 60 * 60_000,
  });
  const liveIntervalMs = options.liveIntervalMs ?? 1000;
  const liveMaxMs = options.liveMaxMs ?? 300_000;
  const history = new MetricsHistory(yard, {
    sampleMs: options.metricsSampleMs ?? 5000,
    maxSamples: 4320,
  });
  const transports = transportMap(options.transports);
  const title = options.title ?? 'Switchyard';
  let assets: Promise<AppAssets> | undefined;
  const getAssets = () => {
    assets ??= loadAssets(options.assetsDir ?? defaultAssetsDir()).catch((err: unknown) => {
      assets = undefined;
      logger.error('dashboard bundle missing', { error: (err as Error).message });
      throw new ApiError(503, 'UNAVAILABLE', (err as Error).message);
    });
    return assets;
  };

  const app = new Hono<Env>({ strict: false }).basePath(basePath || '/');

  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
      crossOriginEmbedderPolicy: false,
      referrerPolicy: 'no-referrer',
      xFrameOptions: 'DENY',
    }),
  );
  app.use('/api/*', async (c, next) => {
    await next();
    if (!c.res.headers.has('cache-control')) c.res.headers.set('cache-control', 'no-store');
  });
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: options.maxBodyBytes ?? 64 * 1024,
      onError: (c) => errorResponse(c, new ApiError(413, 'PAYLOAD_TOO_LARGE', 'body too large')),
    }),
  );

  const secureFor = (c: Context) =>
    options.secureCookie === 'auto' || options.secureCookie === undefined
      ? new URL(c.req.url).protocol === 'https:' ||
        c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https'
      : options.secureCookie;
  const startSession = (c: Context) => {
    const issued = sessions.issue();
    setCookie(c, SESSION_COOKIE, issued.cookie, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: secureFor(c),
      path: basePath || '/',
      maxAge: Math.floor((options.sessionTtlMs ?? 8 * 60 * 60_000) / 1000),
    });
    return issued;
  };

  /** Who is calling: a browser session, an API client (token or signature), or anyone (`none`). */
  const identify = async (c: Context): Promise<Principal | undefined> => {
    const sessionId = sessions.verify(getCookie(c, SESSION_COOKIE));
    if (sessionId) return { kind: 'session', sessionId };
    if ('bearerTokens' in auth && c.req.header('authorization'))
      return checkBearer(c.req.header('authorization') ?? null, auth.bearerTokens)
        ? { kind: 'api' }
        : undefined;
    if ('hmacKey' in auth && c.req.header('x-switchyard-signature')) {
      const url = new URL(c.req.url);
      const reason = checkHmac(
        c.req.raw.headers,
        c.req.method,
        url.pathname + url.search,
        await c.req.text(),
        auth.hmacKey,
        auth.maxSkewMs ?? 300_000,
      );
      return reason === undefined ? { kind: 'api' } : undefined;
    }
    return 'none' in auth ? { kind: 'open' } : undefined;
  };

  const requireAuth: MiddlewareHandler<Env> = async (c, next) => {
    const principal = await identify(c);
    if (!principal) throw new ApiError(401, 'UNAUTHORIZED', 'sign in or send credentials');
    c.set('principal', principal);
    await next();
  };
  /**
   * Actions (the POST routes) need proof that the page made them: the session's CSRF token (or,
   * with no credentials at all, a session first), a same-origin Origin, and a JSON body (which a
   * cross-site form cannot send without a preflight this handler never grants). Checked on the
   * routes that act, after routing, so a known path asked with another method is a 405, not a
   * 403 or a 415.
   */
  const action: MiddlewareHandler<Env> = async (c, next) => {
    const principal = c.get('principal');
    if (principal.kind !== 'api') {
      if (principal.kind === 'open')
        throw new ApiError(403, 'CSRF', 'load the dashboard first (no session)');
      if (!sessions.checkCsrf(principal.sessionId, c.req.header(CSRF_HEADER) ?? null))
        throw new ApiError(403, 'CSRF', 'missing or wrong X-CSRF-Token');
      checkOrigin(c);
    }
    requireJson(c);
    await next();
  };

  app.get('/', async (c) => {
    const { version } = await getAssets();
    c.header('cache-control', 'no-store');
    return c.html(indexHtml({ basePath, version, title }));
  });
  app.get('/assets/:file', async (c) => {
    const file = (await getAssets()).files.get(c.req.param('file'));
    if (!file) throw new ApiError(404, 'NOT_FOUND', 'no such asset');
    c.header('content-type', file.type);
    c.header('cache-control', 'public, max-age=31536000, immutable');
    return c.body(file.body as Uint8Array<ArrayBuffer>);
  });

  app.get('/api/session', query(), async (c) => {
    const principal = await identify(c);
    const method = 'none' in auth ? 'none' : 'bearerTokens' in auth ? 'token' : 'hmac-key';
    if (!principal) return c.json({ authenticated: false, method });
    const sessionId =
      principal.kind === 'session' ? principal.sessionId : startSession(c).sessionId;
    return c.json({
      authenticated: true,
      method,
      csrfToken: sessions.csrfFor(sessionId),
      transports: [...yard.transportNames],
      jobNames: [...yard.jobs.keys()],
      deadLetterTransports: [...transports.keys()],
    });
  });
  app.post('/api/login', query(), async (c) => {
    requireJson(c);
    checkOrigin(c);
    const body = await readJson(c, ['token']);
    const token = typeof body.token === 'string' ? body.token : '';
    const ok =
      'none' in auth ||
      ('bearerTokens' in auth && checkBearer(`Bearer ${token}`, auth.bearerTokens)) ||
      ('hmacKey' in auth && auth.hmacKey.length > 0 && safeEqual(token, auth.hmacKey));
    if (!ok) {
      logger.debug('dashboard sign-in rejected');
      throw new ApiError(401, 'UNAUTHORIZED', 'wrong token');
    }
    const issued = startSession(c);
    return c.json({ authenticated: true, csrfToken: issued.csrf });
  });

  app.use('/api/*', requireAuth);

  app.post('/api/logout', action, query(), async (c) => {
    await readJson(c, []);
    deleteCookie(c, SESSION_COOKIE, { path: basePath || '/' });
    return c.json({ authenticated: false });
  });

  app.get('/api/jobs', query(...JOBS_QUERY), async (c) => {
    const filter = jobsFilter(c);
    const listJobs = jobsOf(yard);
    if (!listJobs) throw notSupported('listJobs');
    return c.json(await readPage(filter.cursor, () => listJobs(filter)));
  });
  app.get('/api/jobs/:id', query(), async (c) => {
    const view = await yard.getJob(jobId(c));
    if (!view) throw jobNotFound();
    return c.json(await jobDetail(yard, view));
  });
  app.get('/api/jobs/:id/tasks', query('status', 'stage', 'cursor', 'limit'), async (c) => {
    const id = jobId(c);
    const status = c.req.query('status');
    if (status !== undefined && !TASK_STATUSES.has(status as TaskStatus))
      throw invalid('status', `must be one of ${[...TASK_STATUSES].join(', ')}`);
    const stage = optionalInt(c.req.query('stage'), 'stage', 0, 10_000);
    const page = cursorAndLimit(c, 200);
    const listTasks = tasksOf(yard);
    if (!listTasks) throw notSupported('listTasks');
    // An unknown job is a 404, as documented, not an empty page that looks like a job without
    // tasks.
    if (!(await yard.getJob(id))) throw jobNotFound();
    const tasks = await readPage(page.cursor, () =>
      listTasks(id, {
        ...(status ? { status: status as TaskStatus } : {}),
        ...(stage === undefined ? {} : { stage }),
        ...page,
      }),
    );
    return c.json(tasks);
  });
  app.post('/api/jobs/:id/cancel', action, query(), async (c) => {
    const id = jobId(c);
    await readJson(c, []);
    const cancelled = await yard.cancel(id);
    const view = await yard.getJob(id);
    if (!view) throw jobNotFound();
    return c.json({ jobId: id, cancelled, status: view.status });
  });
  app.post('/api/jobs/:id/retry', action, query(), async (c) => {
    const id = jobId(c);
    const body = await readJson(c, ['stage', 'task_ids']);
    const stage = body.stage;
    if (stage !== undefined && typeof stage !== 'string' && !Number.isInteger(stage))
      throw invalid('stage', 'must be a stage name or index');
    const ids = body.task_ids;
    if (
      ids !== undefined &&
      (!Array.isArray(ids) ||
        ids.length > 1000 ||
        !ids.every(
          (x) => typeof x === 'string' && x.length > 0 && x.length <= 300 && !x.includes('\u0000'),
        ))
    )
      throw invalid('task_ids', 'must be a list of at most 1000 task ids without U+0000');
    if (!yard.retry) throw notSupported('retry');
    // The stage must be one the job has, as core's API answers: an index past them would reach
    // the store as a number it may not hold (1e300, 2^31), or quietly re-run nothing.
    const view = await yard.getJob(id);
    if (!view) throw jobNotFound();
    if (
      stage !== undefined &&
      !(typeof stage === 'number'
        ? stage >= 0 && stage < view.stages.length
        : view.stages.some((s) => s.name === stage))
    )
      throw invalid(
        'stage',
        `must be a stage of this job: an index from 0 to ${view.stages.length - 1} or one of ${view.stages.map((s) => s.name).join(', ')}`,
      );
    const result = await yard
      .retry(id, {
        ...(stage === undefined ? {} : { stage: stage as string | number }),
        ...(ids === undefined ? {} : { taskIds: ids as string[] }),
      })
      .catch((err: unknown) => {
        // What only the store can tell (a task of another job, a stage not started yet) comes
        // back naming core's fields and the backend: answered naming the dashboard's field.
        const path =
          isSwitchyardError(err) && err.code === 'INVALID_INPUT' && err.issues?.[0]?.path;
        if (path === 'taskIds')
          throw invalid('task_ids', 'must be ids of tasks of this job, all of one stage');
        if (path === 'stage')
          throw invalid('stage', 'must be a stage of this job that has started');
        throw err;
      });
    return c.json(result);
  });
  app.get('/api/progress', query('ids'), async (c) =>
    c.json(await progressOf(yard, watchedIds(c.req.query('ids'), 'ids'))),
  );
  app.get('/api/paths', query('window'), async (c) =>
    c.json(await comparePaths(yard, history, windowOf(c))),
  );

  app.get('/api/dead-letters', query('transport', 'queue', 'limit'), async (c) => {
    const transport = deadLetterTransport(c.req.query('transport'));
    const queue = queueOf(c.req.query('queue'));
    const { limit } = cursorAndLimit(c, 500);
    const letters = await transport.listDeadLetters!(queue, { limit: limit ?? 100 });
    return c.json({ transport: transport.name, queue, deadLetters: letters });
  });
  app.post('/api/dead-letters/replay', action, query(), async (c) => {
    const body = await readJson(c, ['transport', 'queue', 'ids']);
    const transport = deadLetterTransport(body.transport);
    const queue = queueOf(body.queue);
    const ids = body.ids;
    if (
      ids !== undefined &&
      (!Array.isArray(ids) ||
        ids.length > 1000 ||
        !ids.every((x) => typeof x === 'string' && !x.includes('\u0000')))
    )
      throw invalid('ids', 'must be a list of at most 1000 message ids without U+0000');
    const replayed = await transport.replayDeadLetters!(queue, {
      ...(ids === undefined ? {} : { ids: ids as string[] }),
    });
    return c.json({ transport: transport.name, queue, replayed });
  });

  app.get('/api/live', query('job', 'jobs', 'paths', 'window'), (c) => {
    if (options.streaming === false) throw notSupported('live streaming on this host');
    // Validated before the stream opens: a bad id would otherwise be a 200 stream of failures.
    const job = c.req.query('job');
    if (job !== undefined) checkId(job, 'job');
    const watched = watchedIds(c.req.query('jobs'), 'jobs');
    const paths = c.req.query('paths') === '1';
    const window = paths ? windowOf(c) : 'all';
    return streamSSE(c, async (stream) => {
      let open = true;
      stream.onAbort(() => {
        open = false;
      });
      const until = Date.now() + liveMaxMs;
      let last: Record<string, string> = {};
      let metricsAt = 0;
      let id = 0;
      const send = async (event: string, data: unknown) => {
        const text = JSON.stringify(data);
        if (last[event] === text) return;
        last = { ...last, [event]: text };
        await stream.writeSSE({ event, data: text, id: String(++id) });
      };
      await stream.writeSSE({ event: 'hello', data: '{}', retry: 2000 });
      while (open && Date.now() < until) {
        try {
          if (job) {
            const view = await yard.getJob(job);
            if (view) await send('job', jobHeader(view));
          }
          if (watched.length > 0) await send('progress', await progressOf(yard, watched));
          if (paths && Date.now() - metricsAt >= (options.metricsSampleMs ?? 5000)) {
            metricsAt = Date.now();
            await send('paths', await comparePaths(yard, history, window));
          }
        } catch (err) {
          logger.warn('dashboard live update failed', { error: (err as Error).message });
          await stream.writeSSE({
            event: 'failure',
            data: JSON.stringify({ message: 'update failed' }),
          });
        }
        await stream.sleep(liveIntervalMs);
      }
    });
  });

  // A known path asked with another method is a 405 naming the ones it takes (HEAD is answered
  // as GET), decided before any CSRF or content-type check: those belong to the routes that act.
  for (const [path, allow] of [
    ['/', 'GET, HEAD'],
    ['/assets/:file', 'GET, HEAD'],
    ['/api/session', 'GET, HEAD'],
    ['/api/login', 'POST'],
    ['/api/logout', 'POST'],
    ['/api/jobs', 'GET, HEAD'],
    ['/api/jobs/:id', 'GET, HEAD'],
    ['/api/jobs/:id/tasks', 'GET, HEAD'],
    ['/api/jobs/:id/cancel', 'POST'],
    ['/api/jobs/:id/retry', 'POST'],
    ['/api/progress', 'GET, HEAD'],
    ['/api/paths', 'GET, HEAD'],
    ['/api/dead-letters', 'GET, HEAD'],
    ['/api/dead-letters/replay', 'POST'],
    ['/api/live', 'GET, HEAD'],
  ] as const)
    app.all(path, (c) => {
      throw new ApiError(
        405,
        'METHOD_NOT_ALLOWED',
        `${c.req.method} is not allowed here; use ${allow}`,
        { allow },
      );
    });

  app.notFound((c) => errorResponse(c, new ApiError(404, 'NOT_FOUND', 'no such route')));
  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err);
    if (isSwitchyardError(err)) {
      if (err.code === 'JOB_NOT_FOUND')
        return errorResponse(c, new ApiError(404, err.code, err.message));
      if (err.code === 'INVALID_INPUT' || err.code === 'UNKNOWN_TRANSPORT')
        return errorResponse(c, new ApiError(400, err.code, err.message));
      if (err.code === 'BACKEND_ERROR')
        return errorResponse(c, new ApiError(503, 'UNAVAILABLE', 'the store is unavailable'));
    }
    logger.error('dashboard request failed', { error: (err as Error).message });
    return errorResponse(c, new ApiError(500, 'INTERNAL', 'internal error'));
  });

  const deadLetterTransport = (name: unknown): Transport => {
    if (typeof name !== 'string' || name.length === 0) throw invalid('transport', 'is required');
    const transport = transports.get(name);
    if (!transport)
      throw invalid(
        'transport',
        `must be one of: ${[...transports.keys()].join(', ') || '(none)'}`,
      );
    if (!transport.listDeadLetters || !transport.replayDeadLetters)
      throw new ApiError(501, 'NOT_SUPPORTED', `path "${name}" has no dead letters to inspect`);
    return transport;
  };

  return async (request) => {
    try {
      return await app.fetch(request);
    } catch (err) {
      logger.error('dashboard request failed', { error: (err as Error).message });
      return new Response(
        JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error' } }),
        {
          status: 500,
          headers: {
            'content-type': 'application/json',
            'content-security-policy': CONTENT_SECURITY_POLICY,
          },
        },
      );
    }
  };
}

function errorResponse(c: Context, err: ApiError): Response {
  c.header('cache-control', 'no-store');
  for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
  return c.json({ error: { code: err.code, message: err.message } }, err.status);
}

function requireJson(c: Context): void {
  const type = c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json')
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json');
}

/** A browser's Origin, when it sends one, must be this server's. */
function checkOrigin(c: Context): void {
  const origin = c.req.header('origin');
  if (origin === undefined) return;
  const url = new URL(c.req.url);
  const host = c.req.header('x-forwarded-host') ?? c.req.header('host') ?? url.host;
  let given: URL;
  try {
    given = new URL(origin);
  } catch {
    throw new ApiError(403, 'CSRF', 'cross-origin request');
  }
  if (given.host !== host) throw new ApiError(403, 'CSRF', 'cross-origin request');
}

const snakeCase = (key: string) => key.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
const camelCase = (key: string) => key.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());

/**
 * Keys outside `known` (query parameters or body fields) are a 400 naming them, as in core's HTTP
 * API: a misspelt filter must never widen what a request acts on (a replay whose `ids` is
 * misspelt would replay every dead letter, a re-run every failed task, a list every job). Another
 * spelling of a known key (`taskIds` for `task_ids`) gets the known one suggested.
 */
function refuseUnknown(keys: Iterable<string>, known: readonly string[], what: string): void {
  const unknown = [...keys].filter((key) => !known.includes(key));
  if (unknown.length === 0) return;
  const hints = unknown.flatMap((key) => {
    const near = [snakeCase(key), camelCase(key)].find((k) => k !== key && known.includes(k));
    return near === undefined ? [] : [unknown.length === 1 ? near : `${near} for ${key}`];
  });
  throw invalid(
    unknown.join(', '),
    `${unknown.length === 1 ? `is not a ${what}` : `are not ${what}s`} of this request; ${
      hints.length > 0 ? `did you mean ${hints.join(', ')}? ` : ''
    }${known.length > 0 ? `${what}s are ${known.join(', ')}` : `it takes no ${what}s`}`,
  );
}

/** A route's query parameters: any other is refused ({@link refuseUnknown}). */
function query(...known: string[]): MiddlewareHandler<Env> {
  return async (c, next) => {
    refuseUnknown(Object.keys(c.req.queries()), known, 'query parameter');
    await next();
  };
}

/** The JSON object body (`{}` when empty) with no field outside `known` ({@link refuseUnknown}). */
async function readJson(c: Context, known: readonly string[]): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'MALFORMED_JSON', 'body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ApiError(400, 'INVALID_INPUT', 'body must be a JSON object');
  refuseUnknown(Object.keys(value), known, 'field');
  return value as Record<string, unknown>;
}

/**
 * A job id as stores hold them: 1–256 characters without U+0000 (which no store can hold), so a
 * bad one is a 400 naming its field, as in core's API, never a backend's error.
 */
function checkId(id: string, field: string): string {
  if (id.length === 0 || id.length > MAX_ID_LENGTH || id.includes('\u0000'))
    throw invalid(field, `must be 1–${MAX_ID_LENGTH} characters without U+0000`);
  return id;
}

function jobId(c: Context): string {
  return checkId(c.req.param('id') ?? '', 'jobId');
}

/** Filter text a store can hold: at most `max` characters, without U+0000. */
function optionalText(value: string | undefined, field: string, max: number) {
  if (value === undefined || value === '') return undefined;
  if (value.length > max || value.includes('\u0000'))
    throw invalid(field, `must be at most ${max} characters without U+0000`);
  return value;
}

function optionalInt(value: string | undefined, field: string, min: number, max: number) {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max)
    throw invalid(field, `must be an integer from ${min} to ${max}`);
  return Number(value);
}

function cursorAndLimit(c: Context, max: number): { cursor?: string; limit?: number } {
  const cursor = c.req.query('cursor');
  if (
    cursor !== undefined &&
    (cursor.length === 0 || cursor.length > 1000 || cursor.includes('\u0000'))
  )
    throw invalid('cursor', 'must come from a previous page');
  const limit = optionalInt(c.req.query('limit'), 'limit', 1, max);
  return { ...(cursor ? { cursor } : {}), ...(limit === undefined ? {} : { limit }) };
}

/**
 * A cursor is the store's own text, so only the store can tell a forged one; it says so with
 * `INVALID_INPUT` (naming `cursor`, or nothing else since every other field is checked here),
 * answered as a 400 naming `cursor` in the dashboard's words rather than the driver's.
 */
async function readPage<T>(cursor: string | undefined, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (
      cursor !== undefined &&
      isSwitchyardError(err) &&
      err.code === 'INVALID_INPUT' &&
      (err.issues ?? []).every((issue) => issue.path === 'cursor')
    )
      throw invalid('cursor', 'must come from a previous page');
    throw err;
  }
}

/** Core's reading of ISO 8601: only the instants stores hold (the years 0001–9999). */
function optionalDate(value: string | undefined, field: string): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const date = parseInstant(value);
  if (!date)
    throw invalid(
      field,
      'must be an ISO 8601 date or date-time in the years 0001–9999, e.g. 2026-01-31T12:00:00Z',
    );
  return date;
}

function jobsFilter(c: Context): ListJobsFilter {
  const statuses = (c.req.query('status') ?? '').split(',').filter((s) => s.length > 0);
  for (const s of statuses)
    if (!JOB_STATUSES.has(s as JobStatus))
      throw invalid('status', `must be one of ${[...JOB_STATUSES].join(', ')}`);
  const name = optionalText(c.req.query('name'), 'name', 256);
  const transport = optionalText(c.req.query('transport'), 'transport', 100);
  const createdAfter = optionalDate(c.req.query('created_after'), 'created_after');
  const createdBefore = optionalDate(c.req.query('created_before'), 'created_before');
  return {
    ...(statuses.length === 1 ? { status: statuses[0] as JobStatus } : {}),
    ...(statuses.length > 1 ? { status: statuses as JobStatus[] } : {}),
    ...(name ? { name } : {}),
    ...(transport ? { transport } : {}),
    ...(createdAfter ? { createdAfter } : {}),
    ...(createdBefore ? { createdBefore } : {}),
    ...cursorAndLimit(c, 500),
  };
}

/** The comma-separated job ids of the query parameter `field` (`ids`, `jobs`). */
function watchedIds(value: string | undefined, field: string): string[] {
  if (!value) return [];
  const ids = value.split(',').filter((s) => s.length > 0);
  if (
    ids.length > MAX_WATCHED_JOBS ||
    ids.some((id) => id.length > MAX_ID_LENGTH || id.includes('\u0000'))
  )
    throw invalid(
      field,
      `must be at most ${MAX_WATCHED_JOBS} job ids of at most ${MAX_ID_LENGTH} characters without U+0000`,
    );
  return ids;
}

/** The window's name: an own key of WINDOWS (`in` would accept `constructor`, `__proto__`). */
function windowOf(c: Context): string {
  const window = c.req.query('window') ?? '1h';
  if (!Object.hasOwn(WINDOWS, window))
    throw invalid('window', `must be one of ${Object.keys(WINDOWS).join(', ')}`);
  return window;
}

function queueOf(value: unknown): QueueKind {
  const queue = value ?? 'task';
  if (typeof queue !== 'string' || !QUEUES.has(queue as QueueKind))
    throw invalid('queue', 'must be stage or task');
  return queue as QueueKind;
}

function transportMap(given: DashboardOptions['transports']): ReadonlyMap<string, Transport> {
  if (!given) return new Map();
  if (given instanceof Map) return given;
  if (Array.isArray(given)) return new Map(given.map((t: Transport) => [t.name, t]));
  return new Map(Object.entries(given as Record<string, Transport>));
}
