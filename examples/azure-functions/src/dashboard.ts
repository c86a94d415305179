/**
 * The dashboard as an HTTP trigger at `/dashboard/...`. The route is anonymous to the Functions
 * host (a browser cannot send the function key); the dashboard signs users in itself with
 * `SWITCHYARD_HMAC_KEY` or `SWITCHYARD_API_KEY`, and answers 503 until one is set.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import type { YardFromEnv } from '@switchyard/cli';
import { createDashboardHandler, type DashboardHandler } from '@switchyard/dashboard';
import type { FunctionsApp } from './register.js';

/** Mount point of the dashboard (host.json's `routePrefix` is `""`). */
export const DASHBOARD_ROUTE = 'dashboard';

/** The trigger's handler over the app's shared Switchyard. */
export function createDashboardFunction(
  host: () => Promise<YardFromEnv>,
  env: Record<string, string | undefined> = process.env,
): (request: HttpRequest) => Promise<HttpResponseInit> {
  let handler: DashboardHandler | undefined;
  return async (request) => {
    if (!handler) {
      const built = await host();
      const hmacKey = env.SWITCHYARD_HMAC_KEY?.trim();
      const apiKey = await built.apiKey();
      if (!hmacKey && !apiKey)
        return {
          status: 503,
          jsonBody: {
            error: {
              code: 'CONFIG_ERROR',
              message: 'set SWITCHYARD_API_KEY or SWITCHYARD_HMAC_KEY to serve the dashboard',
            },
          },
        };
      // The dashboard may be the app's first caller: the store's schema must exist before reads.
      await built.yard.store.init?.();
      handler = createDashboardHandler(built.yard, {
        auth: hmacKey ? { hmacKey } : { bearerTokens: [apiKey!] },
        basePath: `/${DASHBOARD_ROUTE}`,
        transports: built.transports,
        // Functions buffers responses unless HTTP streaming is enabled: the page polls.
        streaming: false,
        ...(env.SWITCHYARD_SESSION_SECRET ? { sessionSecret: env.SWITCHYARD_SESSION_SECRET } : {}),
      });
    }
    const method = request.method.toUpperCase();
    const response = await handler(
      new Request(request.url, {
        method,
        headers: request.headers,
        ...(method === 'GET' || method === 'HEAD' || !request.body
          ? {}
          : { body: request.body, duplex: 'half' }),
      } as RequestInit),
    );
    const headers = new Headers(response.headers);
    return {
      status: response.status,
      headers,
      body: new Uint8Array(await response.arrayBuffer()),
    };
  };
}

/** Registers the dashboard's trigger on `app` (`GET`/`POST /dashboard/{*path}`). */
export function registerDashboard(
  app: Pick<FunctionsApp, 'http'>,
  handler: (request: HttpRequest) => Promise<HttpResponseInit>,
): void {
  for (const [name, route] of [
    ['dashboard', DASHBOARD_ROUTE],
    ['dashboardPaths', `${DASHBOARD_ROUTE}/{*path}`],
  ] as const)
    app.http(name, { route, methods: ['GET', 'POST'], authLevel: 'anonymous', handler });
}
