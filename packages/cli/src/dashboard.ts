/** `switchyard dashboard`: serves the dashboard for the configured Switchyard until interrupted. */

import { SwitchyardError } from '@switchyard/core';
import type { HttpAuth } from '@switchyard/core/http';

import type { YardFromEnv } from './env.js';

/** What the command needs from the CLI around it. */
export interface DashboardCommandContext {
  out: (text: string) => void;
  err: (text: string) => void;
  json: boolean;
  env: Record<string, string | undefined>;
  /** Aborted on SIGINT/SIGTERM. */
  signal?: AbortSignal;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Reads `--port` (default 4000) and returns the command: sign-in with `SWITCHYARD_HMAC_KEY` or
 * `SWITCHYARD_API_KEY` when set (as the container's API), none on loopback without them; with
 * `work`, a worker runs in the same process. Resolves with 0 once interrupted.
 * @throws {Error} a usage message for a bad port.
 */
export function planDashboard(options: { port: string | undefined; work: boolean }) {
  const port = options.port === undefined ? 4000 : Number(options.port);
  if (!/^\d{1,5}$/.test(options.port ?? '4000') || port > 65_535)
    throw new Error('--port must be an integer from 0 to 65535');
  return async (host: YardFromEnv, ctx: DashboardCommandContext): Promise<number> => {
    const bind = ctx.env.SWITCHYARD_DASHBOARD_HOST?.trim() || '127.0.0.1';
    const hmacKey = ctx.env.SWITCHYARD_HMAC_KEY?.trim();
    const apiKey = await host.apiKey();
    let auth: HttpAuth;
    if (hmacKey) auth = { hmacKey };
    else if (apiKey) auth = { bearerTokens: [apiKey] };
    else if (LOOPBACK.has(bind)) auth = { none: true };
    else
      throw new SwitchyardError('CONFIG_ERROR', 'a dashboard off loopback needs credentials', {
        issues: [
          {
            path: 'SWITCHYARD_API_KEY',
            message: `set it (or SWITCHYARD_HMAC_KEY) to serve on ${bind}`,
          },
        ],
      });
    // Loaded on use: every other command starts without the dashboard's modules.
    const { createDashboardHandler, serveDashboard } = await import('@switchyard/dashboard');
    const handler = createDashboardHandler(host.yard, {
      auth,
      transports: host.transports,
      ...(ctx.env.SWITCHYARD_SESSION_SECRET
        ? { sessionSecret: ctx.env.SWITCHYARD_SESSION_SECRET }
        : {}),
    });
    const served = await serveDashboard({ handler, port, host: bind });
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    ctx.signal?.addEventListener('abort', onSignal);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    if (ctx.json) ctx.out(JSON.stringify({ url: served.url, auth: Object.keys(auth)[0] }));
    else
      ctx.err(
        `dashboard at ${served.url} (${'none' in auth ? 'no sign-in: loopback only' : 'sign in with the API key'}); Ctrl-C stops`,
      );
    const working = options.work
      ? host.yard.work({ signal: stop.signal })
      : new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve()));
    try {
      await working;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await served.close();
    }
    return 0;
  };
}
