import type { app as functionsApp, HttpMethod } from '@azure/functions';
import type { FunctionHandlers } from './handlers.js';

/** The part of `@azure/functions`' `app` the registrations use (so a test can record them). */
export type FunctionsApp = Pick<
  typeof functionsApp,
  'http' | 'serviceBusQueue' | 'storageQueue' | 'timer'
>;

/**
 * Registers every function on `app` — the one place the app is wired. Routes are the HTTP API's own
 * paths (host.json sets `routePrefix` to `""`), so the handler sees the URLs it expects.
 *
 * Connections name app settings: `SERVICE_BUS_CONNECTION_STRING` (or, identity-based,
 * `SERVICE_BUS_CONNECTION_STRING__fullyQualifiedNamespace`) and `AzureWebJobsStorage`.
 */
export function registerFunctions(app: FunctionsApp, handlers: FunctionHandlers): void {
  const api = (name: string, route: string, methods: HttpMethod[]) =>
    app.http(name, { route, methods, authLevel: 'function', handler: handlers.httpApi });
  api('submit', 'api/jobs/submit/{jobName}', ['POST']);
  api('status', 'api/jobs/status/{jobId}', ['GET']);
  api('metrics', 'api/metrics/comparison', ['GET']);
  api('tasks', 'api/jobs/{jobId}/tasks', ['GET']);
  api('cancel', 'api/jobs/{jobId}/cancel', ['POST']);
  api('schedules', 'api/schedules', ['GET']);
  api('scheduleAction', 'api/schedules/{name}/{action}', ['POST']);
  // Probes stay anonymous: they reveal no error text without auth.
  app.http('healthz', {
    route: 'healthz',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: handlers.httpApi,
  });
  app.http('readyz', {
    route: 'readyz',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: handlers.httpApi,
  });

  const sb = 'SERVICE_BUS_CONNECTION_STRING';
  app.serviceBusQueue('sbJobs', {
    queueName: 'sb-jobs',
    connection: sb,
    handler: handlers.serviceBusJobs,
  });
  app.serviceBusQueue('sbTasks', {
    queueName: 'sb-tasks',
    connection: sb,
    handler: handlers.serviceBusTasks,
  });
  const sq = 'AzureWebJobsStorage';
  app.storageQueue('sqJobs', {
    queueName: 'sq-jobs',
    connection: sq,
    handler: handlers.storageJobs,
  });
  app.storageQueue('sqTasks', {
    queueName: 'sq-tasks',
    connection: sq,
    handler: handlers.storageTasks,
  });

  app.timer('reconcile', { schedule: '0 */1 * * * *', handler: handlers.reconcileTimer });
  // Every 10 s: schedule fires and delayed jobs are at most this late.
  app.timer('schedules', { schedule: '*/10 * * * * *', handler: handlers.schedulesTimer });
}
