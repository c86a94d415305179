/**
 * The Functions app's handlers, as plain exported functions over one shared Switchyard. Outside
 * the Functions host `app.*` registrations do nothing, so tests call these directly with a real
 * `HttpRequest` / `InvocationContext`; `index.ts` registers them.
 * @module
 */
import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';
import {
  createYardFromEnv,
  loadJobs,
  loadSchedules,
  type NamedJob,
  type YardFromEnv,
} from '@switchyard/cli';
import type { HandleSettlement, QueueKind } from '@switchyard/core';
import { createHttpHandler } from '@switchyard/core/http';
import { fromServiceBusTrigger } from '@switchyard/driver-servicebus';
import { fromStorageQueueTrigger } from '@switchyard/driver-storagequeue';
import { helloWorld } from '@switchyard/example-jobs';
import { startTelemetry } from '@switchyard/example-telemetry';

/** A queue-trigger handler: resolves to let the host complete the message, throws to retry it. */
export type QueueHandler = (message: unknown, context: InvocationContext) => Promise<void>;

/** Every function of the app. */
export interface FunctionHandlers {
  /** All API routes (`createHttpHandler` with `auth: { none: true }`: the host checks the function key). */
  httpApi(request: HttpRequest, context?: InvocationContext): Promise<HttpResponseInit>;
  /** `SERVICE_BUS_JOB_QUEUE` (default `sb-jobs`: stage messages) on Service Bus. */
  serviceBusJobs: QueueHandler;
  /** `SERVICE_BUS_TASK_QUEUE` (default `sb-tasks`: task messages) on Service Bus. */
  serviceBusTasks: QueueHandler;
  /** `STORAGE_JOB_QUEUE` (default `sq-jobs`) on Storage Queues. */
  storageJobs: QueueHandler;
  /** `STORAGE_TASK_QUEUE` (default `sq-tasks`) on Storage Queues. */
  storageTasks: QueueHandler;
  /** Timer: one reconciler pass (re-drives stuck work; a lease keeps it to one instance at a time). */
  reconcileTimer(timer: Timer, context: InvocationContext): Promise<void>;
  /**
   * Timer: one scheduler pass (cron schedules' due fires, delayed jobs coming due, deadlines); a
   * store lease keeps it to one instance at a time, and each fire is submitted once.
   */
  schedulesTimer(timer: Timer, context: InvocationContext): Promise<void>;
  /** The Switchyard, built on first use from the environment. */
  host(): Promise<YardFromEnv>;
  /** Closes the Switchyard (tests; the Functions host just stops the process). */
  close(): Promise<void>;
}

/** Thrown to make the host retry (Service Bus: abandon; Storage: visible again after `visibilityTimeout`). */
export class RetryLater extends Error {
  constructor(
    message: string,
    readonly settlement: HandleSettlement,
  ) {
    super(message);
    this.name = 'RetryLater';
  }
}

/**
 * Builds the handlers over one lazily created Switchyard configured from `env` — the same
 * `createYardFromEnv()` as the CLI and the container: `ENABLE_SERVICE_BUS` / `SERVICE_BUS_*`,
 * `ENABLE_STORAGE_QUEUE` / `STORAGE_*` or `AzureWebJobsStorage`, `DATABASE_URL`, `KEY_VAULT_URL`;
 * the triggers' last delivery from `SERVICE_BUS_MAX_DELIVERY_COUNT` / `STORAGE_MAX_DEQUEUE_COUNT`
 * (`configFromEnv`: empty means the default, malformed is a `CONFIG_ERROR`).
 * The `postgres` queue path is left out (nothing in Functions consumes it) unless no Azure queue
 * is enabled.
 */
export function createFunctionHandlers(
  env: Record<string, string | undefined> = process.env,
  jobs: readonly NamedJob[] = [helloWorld],
): FunctionHandlers {
  let hostPromise: Promise<YardFromEnv> | undefined;
  let http: ((request: Request) => Promise<Response>) | undefined;

  const host = () => {
    hostPromise ??= (async () => {
      // Before the Switchyard exists: its metric instruments bind to the provider registered now.
      await startTelemetry(env);
      // Jobs are bundled (static import); SWITCHYARD_JOBS names a module to load instead.
      const module = env.SWITCHYARD_JOBS?.trim();
      return createYardFromEnv({
        jobs: module ? await loadJobs(module) : jobs,
        ...(module ? { schedules: await loadSchedules(module) } : {}),
        env,
        postgresTransport: false,
      });
    })().catch((err: unknown) => {
      hostPromise = undefined; // a later invocation tries again (e.g. Key Vault was throttling)
      throw err;
    });
    return hostPromise;
  };

  /** Applies the engine's verdict the only ways a v4 Node trigger can: return or throw. */
  const settle = (outcome: HandleSettlement, context: InvocationContext) => {
    if (outcome.action === 'complete') return;
    if (outcome.action === 'retry')
      throw new RetryLater(`retry requested: ${outcome.reason ?? 'transient failure'}`, outcome);
    // Dead-letter: a poisoned task is already recorded as failed in the store (and counted by the
    // barrier), so its redelivery is acknowledged; anything the engine still refuses (malformed,
    // unknown job) keeps failing until the host dead-letters it after maxDeliveryCount /
    // maxDequeueCount.
    context.warn('dead-letter requested', {
      reason: outcome.reason,
      description: outcome.description,
    });
    throw new RetryLater(
      `dead-letter requested: ${outcome.reason}: ${outcome.description}`,
      outcome,
    );
  };

  const serviceBus =
    (queue: QueueKind): QueueHandler =>
    async (message, context) => {
      const { yard, config } = await host();
      const { body, meta } = fromServiceBusTrigger(message, context, {
        queue,
        maxDeliveryCount: config.serviceBus.maxDeliveryCount,
      });
      settle(await yard.handle(body, meta), context);
    };

  const storage =
    (queue: QueueKind): QueueHandler =>
    async (message, context) => {
      const { yard, config } = await host();
      const { body, meta } = fromStorageQueueTrigger(message, context, {
        queue,
        maxDequeueCount: config.storageQueue.maxDequeueCount,
      });
      settle(await yard.handle(body, meta), context);
    };

  return {
    host,
    async httpApi(request) {
      let h = http;
      if (!h) {
        const built = await host();
        h = http = createHttpHandler(built.yard, {
          auth: { none: true },
          transportFlags: built.transportFlags,
        });
      }
      const method = request.method.toUpperCase();
      const response = await h(
        new Request(request.url, {
          method,
          headers: request.headers,
          ...(method === 'GET' || method === 'HEAD' || !request.body
            ? {}
            : { body: request.body, duplex: 'half' }),
        } as RequestInit),
      );
      const headers: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        headers[name] = value;
      });
      return {
        status: response.status,
        headers,
        body: await response.text(),
      };
    },
    serviceBusJobs: serviceBus('stage'),
    serviceBusTasks: serviceBus('task'),
    storageJobs: storage('stage'),
    storageTasks: storage('task'),
    async reconcileTimer(timer, context) {
      const { yard } = await host();
      const result = await yard.reconcile();
      context.info('reconciler pass', { ...result, pastDue: timer.isPastDue });
    },
    async schedulesTimer(timer, context) {
      const { yard } = await host();
      const result = await yard.runSchedules();
      context.info('scheduler pass', {
        ran: result.ran,
        fired: result.fired.length,
        skipped: result.skipped,
        released: result.released,
        expired: result.expired,
        pastDue: timer.isPastDue,
      });
    },
    async close() {
      const h = hostPromise;
      hostPromise = undefined;
      http = undefined;
      if (h) await (await h).close();
    },
  };
}
