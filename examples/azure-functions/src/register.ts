import type { app as functionsApp, HttpMethod } from '@azure/functions';
import { configFromEnv } from '@switchyard/azure';
import type { Priority, QueueKind } from '@switchyard/core';
import { serviceBusTriggerQueues } from '@switchyard/driver-servicebus';
import { storageQueueTriggerQueues } from '@switchyard/driver-storagequeue';
import type { FunctionHandlers } from './handlers.js';

/** The part of `@azure/functions`' `app` the registrations use (so a test can record them). */
export type FunctionsApp = Pick<
  typeof functionsApp,
  'http' | 'serviceBusQueue' | 'storageQueue' | 'timer'
>;

/** The Service Bus connection app setting (identity-based: `…__fullyQualifiedNamespace`). */
export const SERVICE_BUS_CONNECTION_SETTING = 'SERVICE_BUS_CONNECTION_STRING';

/**
 * Registers every function on `app` — the one place the app is wired. Routes are the HTTP API's own
 * paths (host.json sets `routePrefix` to `""`), so the handler sees the URLs it expects.
 *
 * The queue triggers follow the same settings the handlers send with (`configFromEnv(env)`, read
 * from the app settings the worker runs with): each path's triggers are registered only when the
 * path is enabled (`ENABLE_SERVICE_BUS`, `ENABLE_STORAGE_QUEUE`), on the queues named by
 * `SERVICE_BUS_JOB_QUEUE` / `SERVICE_BUS_TASK_QUEUE` and `STORAGE_JOB_QUEUE` /
 * `STORAGE_TASK_QUEUE` (defaults `sb-*`, `sq-*`). Connections name app settings:
 * `SERVICE_BUS_CONNECTION_STRING` (or `SERVICE_BUS_CONNECTION_STRING__fullyQualifiedNamespace`),
 * and the storage variable the driver reads — `STORAGE_CONNECTION_STRING` when set, else
 * `AzureWebJobsStorage` (or its identity-based `__queueServiceUri` / `__accountName` forms).
 *
 * @throws SwitchyardError `CONFIG_ERROR` naming every malformed setting (the host reports it when
 *   indexing the functions, instead of listening on queues nothing sends to).
 */
export function registerFunctions(
  app: FunctionsApp,
  handlers: FunctionHandlers,
  env: Record<string, string | undefined> = process.env,
): void {
  const config = configFromEnv(env);
  const api = (name: string, route: string, methods: HttpMethod[]) =>
    app.http(name, { route, methods, authLevel: 'function', handler: handlers.httpApi });
  // HEAD beside every GET: the handler answers it as GET without a body (probes use it).
  api('submit', 'api/jobs/submit/{jobName}', ['POST']);
  api('status', 'api/jobs/status/{jobId}', ['GET', 'HEAD']);
  api('metrics', 'api/metrics/comparison', ['GET', 'HEAD']);
  api('tasks', 'api/jobs/{jobId}/tasks', ['GET', 'HEAD']);
  api('cancel', 'api/jobs/{jobId}/cancel', ['POST']);
  api('listJobs', 'api/jobs', ['GET', 'HEAD']);
  api('retry', 'api/jobs/{jobId}/retry', ['POST']);
  api('retryJobs', 'api/jobs/retry', ['POST']);
  api('cancelJobs', 'api/jobs/cancel', ['POST']);
  api('purgeJobs', 'api/jobs/purge', ['POST']);
  api('listSchedules', 'api/schedules', ['GET', 'HEAD']);
  api('scheduleAction', 'api/schedules/{name}/{action}', ['POST']);
  // Probes stay anonymous: they reveal no error text without auth.
  app.http('healthz', {
    route: 'healthz',
    methods: ['GET', 'HEAD'],
    authLevel: 'anonymous',
    handler: handlers.httpApi,
  });
  app.http('readyz', {
    route: 'readyz',
    methods: ['GET', 'HEAD'],
    authLevel: 'anonymous',
    handler: handlers.httpApi,
  });

  // One trigger per queue: with priority lanes (`*_PRIORITY_LANES`) the task queue's lanes
  // `<task>-high` and `<task>-low` get triggers of their own (`sbTasksHigh`, `sqTasksLow`, …).
  const sb = config.serviceBus;
  if (sb.enabled) {
    const queues = serviceBusTriggerQueues({
      queues: { stage: sb.jobQueue, task: sb.taskQueue },
      priorityLanes: sb.priorityLanes,
    });
    for (const { queueName, queue, priority } of queues)
      app.serviceBusQueue(functionName('sb', queue, priority), {
        queueName,
        connection: SERVICE_BUS_CONNECTION_SETTING,
        handler: queue === 'stage' ? handlers.serviceBusJobs : handlers.serviceBusTasks,
      });
  }
  const sq = config.storageQueue;
  if (sq.enabled) {
    const queues = storageQueueTriggerQueues({
      queues: { stage: sq.jobQueue, task: sq.taskQueue },
      priorityLanes: sq.priorityLanes,
    });
    for (const { queueName, queue, priority } of queues)
      app.storageQueue(functionName('sq', queue, priority), {
        queueName,
        connection: sq.connectionSetting,
        handler: queue === 'stage' ? handlers.storageJobs : handlers.storageTasks,
      });
  }

  app.timer('reconcile', { schedule: '0 */1 * * * *', handler: handlers.reconcileTimer });
  // Every 10 s: schedule fires and delayed jobs are at most this late.
  app.timer('schedules', { schedule: '*/10 * * * * *', handler: handlers.schedulesTimer });
}

/** `sbJobs`, `sbTasks`, `sbTasksHigh`, `sqTasksLow`, …: the normal lane keeps the plain name. */
function functionName(
  prefix: 'sb' | 'sq',
  queue: QueueKind,
  priority: Priority | undefined,
): string {
  const base = `${prefix}${queue === 'stage' ? 'Jobs' : 'Tasks'}`;
  return priority === undefined || priority === 'normal'
    ? base
    : `${base}${priority[0]!.toUpperCase()}${priority.slice(1)}`;
}
