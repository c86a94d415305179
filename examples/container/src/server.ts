/**
 * Switchyard in a long-running container: one process runs the worker on every configured path
 * (with the reconciler) and serves the HTTP API on node:http. SIGTERM (or SIGINT) drains it:
 * stop accepting connections, stop receiving messages, let in-flight tasks finish (or release them
 * back to their queue), close the store and transports, exit 0.
 *
 * Configuration: the environment variables of `configFromEnv()` (see packages/azure/README.md),
 * plus the ones in {@link readSettings}.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYardFromEnv, DEFAULT_JOBS_MODULE, loadJobs, loadSchedules } from '@switchyard/cli';
import { type Logger, SwitchyardError } from '@switchyard/core';
import { createHttpHandler, type HttpAuth } from '@switchyard/core/http';
import { createDashboardHandler } from '@switchyard/dashboard';
import { sendWebResponse, toWebRequest } from './node-adapter.js';

/** Container settings (besides `configFromEnv()`'s). */
export interface Settings {
  /** `PORT` (default 8080; 0 picks a free port). */
  port: number;
  /** `HOST` (default `0.0.0.0`). */
  host: string;
  /** `WORKER_CONCURRENCY`: task handlers at once (default 64). */
  concurrency: number;
  /** `VISIBILITY_TIMEOUT_MS`: how long a received message stays hidden (default 30000). */
  visibilityTimeoutMs: number;
  /** `RECONCILE_INTERVAL_MS`: reconciler pass interval (default 60000; 0 disables). */
  reconcileIntervalMs: number;
  /** `RECONCILE_OLDER_THAN_MS`: work untouched this long is re-driven (default 300000). */
  reconcileOlderThanMs: number;
  /**
   * `SCHEDULER_INTERVAL_MS`: how often the worker runs a scheduler pass — cron fires, delayed
   * jobs coming due, deadlines (default 5000; 0 disables it in this instance).
   */
  schedulerIntervalMs: number;
  /** `SHUTDOWN_TIMEOUT_MS`: longest drain before giving up with exit 1 (default 25000). */
  shutdownTimeoutMs: number;
  /** `SWITCHYARD_API_AUTH=none` disables API auth (only behind something that authenticates). */
  authNone: boolean;
  /** `SWITCHYARD_HMAC_KEY`: require HMAC-signed requests instead of a bearer token. */
  hmacKey?: string;
  /** `SWITCHYARD_JOBS`: module exporting the jobs (default the example `hello_world`). */
  jobsModule: string;
}

/** Reads and checks the container's own variables; throws one `CONFIG_ERROR` naming each bad one. */
export function readSettings(env: Record<string, string | undefined>): Settings {
  const issues: { path: string; message: string }[] = [];
  // Durations go to timers, which hold at most 2^31 - 1 ms (about 24.8 days): a longer one
  // would fire at once (a drain timing out as it starts).
  const int = (name: string, fallback: number, min = 0, max = 2_147_483_647) => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      issues.push({ path: name, message: `must be an integer from ${min} to ${max}` });
      return fallback;
    }
    return Number(raw);
  };
  const auth = env.SWITCHYARD_API_AUTH?.trim();
  if (auth && auth !== 'none')
    issues.push({ path: 'SWITCHYARD_API_AUTH', message: 'must be "none" or unset' });
  const hmacKey = env.SWITCHYARD_HMAC_KEY?.trim() || undefined;
  if (hmacKey !== undefined && hmacKey.length < 16)
    issues.push({ path: 'SWITCHYARD_HMAC_KEY', message: 'must be at least 16 characters' });
  const settings: Settings = {
    port: int('PORT', 8080, 0, 65_535),
    host: env.HOST?.trim() || '0.0.0.0',
    concurrency: int('WORKER_CONCURRENCY', 64, 1),
    visibilityTimeoutMs: int('VISIBILITY_TIMEOUT_MS', 30_000, 1000),
    reconcileIntervalMs: int('RECONCILE_INTERVAL_MS', 60_000),
    reconcileOlderThanMs: int('RECONCILE_OLDER_THAN_MS', 300_000, 1000),
    schedulerIntervalMs: int('SCHEDULER_INTERVAL_MS', 5000),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 25_000, 1000),
    authNone: auth === 'none',
    ...(hmacKey ? { hmacKey } : {}),
    jobsModule: env.SWITCHYARD_JOBS?.trim() || DEFAULT_JOBS_MODULE,
  };
  if (issues.length > 0)
    throw new SwitchyardError(
      'CONFIG_ERROR',
      `invalid container settings: ${issues.map((i) => i.path).join(', ')}`,
      {
        issues,
      },
    );
  return settings;
}

/** One JSON line per event on stdout: what container log collectors expect. */
export const log = (level: string, message: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`,
  );

const logger: Logger = {
  debug: () => {},
  info: (m, f) => log('info', m, f),
  warn: (m, f) => log('warn', m, f),
  error: (m, f) => log('error', m, f),
};

/** A running container host. */
export interface ContainerHost {
  server: Server;
  port: number;
  /** Drains and closes; resolves true when everything stopped within the shutdown timeout. */
  shutdown(reason: string): Promise<boolean>;
}

/** Starts the worker and the HTTP API. */
export async function start(
  env: Record<string, string | undefined> = process.env,
): Promise<ContainerHost> {
  const settings = readSettings(env);
  const jobs = await loadJobs(settings.jobsModule);
  const host = await createYardFromEnv({
    jobs,
    // The jobs module's cron schedules: work() evaluates them (one instance at a time, a lease).
    schedules: await loadSchedules(settings.jobsModule),
    env,
    logger,
    visibilityTimeoutMs: settings.visibilityTimeoutMs,
    reconcile: {
      intervalMs: settings.reconcileIntervalMs,
      olderThanMs: settings.reconcileOlderThanMs,
    },
    scheduler: { intervalMs: settings.schedulerIntervalMs },
  });
  const yard = host.yard;
  try {
    await yard.store.init?.();
    const apiKey = await host.apiKey();
    let auth: HttpAuth;
    if (settings.hmacKey) auth = { hmacKey: settings.hmacKey };
    else if (apiKey) auth = { bearerTokens: [apiKey] };
    else if (settings.authNone) auth = { none: true };
    else
      throw new SwitchyardError('CONFIG_ERROR', 'the HTTP API needs credentials', {
        issues: [
          {
            path: 'SWITCHYARD_API_KEY',
            message:
              'set it (or SWITCHYARD_HMAC_KEY, or SWITCHYARD_API_AUTH=none behind an authenticating proxy)',
          },
        ],
      });
    const handler = createHttpHandler(yard, {
      auth,
      logger,
      transportFlags: host.transportFlags,
    });

    // The dashboard at /dashboard: same credentials as the API (a browser signs in once).
    const dashboard = createDashboardHandler(yard, {
      auth,
      basePath: '/dashboard',
      transports: host.transports,
      logger,
      ...(env.SWITCHYARD_SESSION_SECRET ? { sessionSecret: env.SWITCHYARD_SESSION_SECRET } : {}),
    });
    const route = (request: Request) =>
      /^\/dashboard(\/|$)/.test(new URL(request.url).pathname)
        ? dashboard(request)
        : handler(request);

    const server = createServer((req, res) => {
      const origin = `http://${req.headers.host && /^[\w.:[\]-]+$/.test(req.headers.host) ? req.headers.host : 'localhost'}`;
      let request: Request;
      try {
        request = toWebRequest(req, origin);
      } catch {
        res.writeHead(400, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'unsupported request' } }));
        return;
      }
      route(request)
        .then((response) => sendWebResponse(res, response))
        .catch((err: unknown) => {
          logger.error('response failed', {
            error: err instanceof Error ? err.message : String(err),
          });
          res.destroy();
        });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(settings.port, settings.host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;

    const stopWork = new AbortController();
    const working = yard.work({
      concurrency: settings.concurrency,
      signal: stopWork.signal,
      visibilityTimeoutMs: settings.visibilityTimeoutMs,
    });
    working.catch((err: unknown) => logger.error('worker failed', { error: String(err) }));
    logger.info('listening', {
      port,
      pid: process.pid,
      transports: yard.transportNames,
      store: host.storeLocation.startsWith('pglite:') ? 'pglite' : 'postgres',
      auth: Object.keys(auth)[0],
    });

    let shuttingDown: Promise<boolean> | undefined;
    const shutdown = (reason: string) => {
      shuttingDown ??= (async () => {
        logger.info('shutting down', { reason });
        const drain = (async () => {
          // 1. No new connections; idle keep-alive sockets go now, busy ones after their response.
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          server.closeIdleConnections();
          // 2. Stop receiving; in-flight tasks finish or are released to their queue.
          stopWork.abort();
          await working.catch(() => {});
          await closed;
          // 3. Store and transports.
          await host.close();
        })();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), settings.shutdownTimeoutMs);
        });
        const ok = await Promise.race([drain.then(() => true), timedOut]);
        clearTimeout(timer);
        if (!ok) server.closeAllConnections();
        logger.info(ok ? 'stopped' : 'shutdown timed out', { reason });
        return ok;
      })();
      return shuttingDown;
    };
    return { server, port, shutdown };
  } catch (err) {
    await host.close().catch(() => {});
    throw err;
  }
}
