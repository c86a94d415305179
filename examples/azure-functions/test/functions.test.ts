/**
 * The Functions app end to end, with this test as the Functions host: HTTP requests go to the
 * exported HTTP handler as real `HttpRequest`s; messages are pulled from the real queues (Service
 * Bus emulator, Azurite) and handed to the trigger handlers with trigger metadata, then settled the
 * way the host settles them (return → complete, throw → abandon / visible again). State lives in
 * PostgreSQL (own schema).
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { HttpRequest, InvocationContext, type Timer } from '@azure/functions';
import { defineJob, defineTask, stage } from '@switchyard/core';
import type { ReceivedMessage, Settlement, Transport } from '@switchyard/core/driver';
import { serviceBusTransport } from '@switchyard/driver-servicebus';
import { storageQueueTransport } from '@switchyard/driver-storagequeue';
import { helloWorld } from '@switchyard/example-jobs';
import { type ServiceBusEmulator, startEmulator } from '@switchyard/servicebus-emulator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Azurite, startAzurite } from '../../../packages/driver-storagequeue/test/azurite.js';
import {
  createFunctionHandlers,
  type FunctionHandlers,
  type QueueHandler,
  RetryLater,
} from '../src/handlers.js';
import { type FunctionsApp, registerFunctions } from '../src/register.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `fn_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

let azurite: Azurite | undefined;
let emulator: ServiceBusEmulator | undefined;
let db: pg.Client | undefined;
let handlers: FunctionHandlers;
let env: Record<string, string>;
let missing: string | undefined;
const receivers: Transport[] = [];

/** A task that always fails, with attempts to spare: its first failure must be retried. */
const alwaysFails = defineTask({
  name: 'always_fails',
  retry: { maxAttempts: 3 },
  handler: async () => {
    throw new Error('boom');
  },
});
const flaky = defineJob({
  name: 'flaky',
  stages: [stage({ name: 'fail', task: alwaysFails, fanOut: () => [{}] })],
});

interface Registration {
  kind: string;
  name: string;
  options: Record<string, unknown>;
}

/** Runs `registerFunctions` against a recording `app`, as the Functions host would index it. */
function registrations(
  h: FunctionHandlers,
  settings: Record<string, string | undefined>,
): Registration[] {
  const calls: Registration[] = [];
  const record =
    (kind: string) =>
    (name: string, options: unknown): void => {
      calls.push({ kind, name, options: options as Record<string, unknown> });
    };
  const fake = {
    http: record('http'),
    serviceBusQueue: record('serviceBusQueue'),
    storageQueue: record('storageQueue'),
    timer: record('timer'),
  } as unknown as FunctionsApp;
  registerFunctions(fake, h, settings);
  return calls;
}

async function service<T>(name: string, start: () => Promise<T>): Promise<T | undefined> {
  try {
    return await start();
  } catch (err) {
    const message = `${name} unavailable: ${err instanceof Error ? err.message : String(err)}`;
    if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${message}`);
    missing ??= message;
    return undefined;
  }
}

beforeAll(async () => {
  [azurite, emulator, db] = await Promise.all([
    service('Azurite', () => startAzurite()),
    service('Service Bus emulator', () => startEmulator({ port: 0, lockDurationMs: 5000 })),
    service('PostgreSQL', async () => {
      const client = new pg.Client({
        connectionString: DATABASE_URL,
        connectionTimeoutMillis: 3000,
      });
      try {
        await client.connect();
      } catch (err) {
        await client.end().catch(() => {});
        throw err;
      }
      return client;
    }),
  ]);
  if (missing) {
    console.warn(
      `[azure-functions tests] skipping: ${missing}. Set REQUIRE_SERVICES=1 to fail instead.`,
    );
    return;
  }
  // Non-default queue names and the storage connection in STORAGE_CONNECTION_STRING (not
  // AzureWebJobsStorage): the triggers must listen where the handlers send. Empty counts are unset.
  env = {
    ENABLE_SERVICE_BUS: 'true',
    SERVICE_BUS_CONNECTION_STRING: emulator!.connectionString,
    SERVICE_BUS_JOB_QUEUE: 'orders-jobs',
    SERVICE_BUS_TASK_QUEUE: 'orders-tasks',
    SERVICE_BUS_MAX_DELIVERY_COUNT: '',
    ENABLE_STORAGE_QUEUE: 'true',
    STORAGE_CONNECTION_STRING: azurite!.connectionString,
    STORAGE_JOB_QUEUE: 'orders-jobs',
    STORAGE_TASK_QUEUE: 'orders-tasks',
    STORAGE_MAX_DEQUEUE_COUNT: '',
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
  };
  handlers = createFunctionHandlers(env, [helloWorld, flaky]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(receivers.map((r) => r.close()));
  await handlers?.close();
  await db?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await db?.end();
  await emulator?.close();
  await azurite?.stop();
});

const quiet = { logHandler: () => {} };

async function http(method: string, path: string, body?: unknown) {
  const request = new HttpRequest({
    method,
    url: `http://localhost:7071${path}`,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined
      ? {}
      : { body: { string: typeof body === 'string' ? body : JSON.stringify(body) } }),
  });
  const res = await handlers.httpApi(
    request,
    new InvocationContext({ functionName: 'api', ...quiet }),
  );
  return {
    status: res.status ?? 200,
    json: JSON.parse(String(res.body)) as Record<string, unknown>,
  };
}

/** What the Functions host hands a trigger: JSON text arrives parsed. */
function asHostDelivers(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

type Lane = { transport: Transport; queue: 'stage' | 'task'; handler: QueueHandler; name: string };

/**
 * The "host's" listeners, built only from what `registerFunctions` registered: each trigger's
 * queue name, and the connection string in the app setting its `connection` names.
 */
function lanesFromRegistrations(calls: Registration[]): Lane[] {
  const by = (name: string) => {
    const call = calls.find((c) => c.name === name);
    if (!call) throw new Error(`${name} is not registered`);
    const connection = env[call.options.connection as string];
    expect(connection, `app setting ${String(call.options.connection)} of ${name}`).toBeDefined();
    return {
      queueName: call.options.queueName as string,
      connection: connection!,
      handler: call.options.handler as QueueHandler,
    };
  };
  const [sbJobs, sbTasks, sqJobs, sqTasks] = ['sbJobs', 'sbTasks', 'sqJobs', 'sqTasks'].map(by);
  const sb = serviceBusTransport({
    connectionString: sbJobs!.connection,
    queues: { stage: sbJobs!.queueName, task: sbTasks!.queueName },
  });
  const sq = storageQueueTransport({
    connectionString: sqJobs!.connection,
    queues: { stage: sqJobs!.queueName, task: sqTasks!.queueName },
  });
  receivers.push(sb, sq);
  return [
    { transport: sb, queue: 'stage', handler: sbJobs!.handler, name: 'sbJobs' },
    { transport: sb, queue: 'task', handler: sbTasks!.handler, name: 'sbTasks' },
    { transport: sq, queue: 'stage', handler: sqJobs!.handler, name: 'sqJobs' },
    { transport: sq, queue: 'task', handler: sqTasks!.handler, name: 'sqTasks' },
  ];
}

let builtLanes: Lane[] | undefined;
const hostLanes = () => (builtLanes ??= lanesFromRegistrations(registrations(handlers, env)));

/** What the Functions host hands a trigger with a message: the metadata of its delivery. */
function triggerContext(lane: Lane, m: ReceivedMessage): InvocationContext {
  const triggerMetadata =
    lane.transport.name === 'servicebus'
      ? {
          deliveryCount: m.deliveryCount,
          messageId: m.id,
          enqueuedTimeUtc: m.enqueuedAt?.toISOString(),
        }
      : {
          dequeueCount: m.deliveryCount,
          id: m.id,
          insertionTime: m.enqueuedAt?.toISOString(),
          popReceipt: 'p',
        };
  return new InvocationContext({ functionName: lane.name, triggerMetadata, ...quiet });
}

/** One pass of the "host": receive from each queue, invoke the trigger handler, settle. */
async function pump(lanes: Lane[]): Promise<number> {
  let handled = 0;
  await Promise.all(
    lanes.map(async (lane) => {
      const messages = await lane.transport.receive(lane.queue, {
        maxMessages: 32,
        waitMs: 50,
        visibilityTimeoutMs: 30_000,
      });
      const settlements: Settlement[] = await Promise.all(
        messages.map(async (m: ReceivedMessage): Promise<Settlement> => {
          const context = triggerContext(lane, m);
          try {
            await lane.handler(asHostDelivers(m.body), context);
            return { message: m, action: 'complete' };
          } catch {
            return {
              message: m,
              action: 'retry',
              delayMs: lane.transport.name === 'servicebus' ? 0 : 1000,
            };
          }
        }),
      );
      if (settlements.length > 0) await lane.transport.settle(settlements);
      handled += messages.length;
    }),
  );
  return handled;
}

describe('Azure Functions app (handlers on Azurite, the Service Bus emulator and PostgreSQL)', () => {
  it('both paths end to end: use_service_bus true and false over HTTP, then the metrics comparison', async (ctx) => {
    if (missing) return ctx.skip();
    const n = 25;
    const sb = await http('POST', '/api/jobs/submit/hello_world', {
      n,
      use_service_bus: true,
      idempotencyKey: `sb-${schema}`,
    });
    expect(sb.status).toBe(202);
    expect(sb.json.transport).toBe('servicebus');
    const sq = await http('POST', '/api/jobs/submit/hello_world', {
      n,
      use_service_bus: false,
      idempotencyKey: `sq-${schema}`,
    });
    expect(sq.status).toBe(202);
    expect(sq.json.transport).toBe('storagequeue');
    // Resubmitting is idempotent.
    const again = await http('POST', '/api/jobs/submit/hello_world', {
      n,
      use_service_bus: true,
      idempotencyKey: `sb-${schema}`,
    });
    expect(again.status).toBe(200);
    expect(again.json.jobId).toBe(sb.json.jobId);

    const host = await handlers.host();
    const lanes = hostLanes();
    const ids = [sb.json.jobId as string, sq.json.jobId as string];
    const deadline = Date.now() + 120_000;
    for (;;) {
      await pump(lanes);
      const views = await Promise.all(ids.map((id) => host.yard.getJob(id)));
      if (views.every((v) => v && ['succeeded', 'failed', 'cancelled'].includes(v.status))) break;
      if (Date.now() > deadline)
        throw new Error(`jobs not done: ${JSON.stringify(views.map((v) => v?.stages))}`);
    }

    for (const [id, path] of [
      [ids[0], 'servicebus'],
      [ids[1], 'storagequeue'],
    ] as const) {
      const status = await http('GET', `/api/jobs/status/${id}`);
      expect(status.status).toBe(200);
      expect(status.json).toMatchObject({
        status: 'succeeded',
        transport: path,
        result: { greeted: n, replied: n },
      });
      expect(
        (status.json.stages as { succeeded: number; failed: number }[]).map((s) => [
          s.succeeded,
          s.failed,
        ]),
      ).toEqual([
        [n, 0],
        [n, 0],
      ]);
    }

    const metrics = await http('GET', '/api/metrics/comparison');
    expect(metrics.status).toBe(200);
    const paths = metrics.json.transports as {
      transport: string;
      jobs: { succeeded: number };
      tasks: { total: number; succeeded: number };
    }[];
    const by = Object.fromEntries(paths.map((p) => [p.transport, p]));
    for (const path of ['servicebus', 'storagequeue'])
      expect(by[path], path).toMatchObject({
        jobs: { succeeded: 1 },
        tasks: { total: 2 * n, succeeded: 2 * n },
      });

    const tasks = await http('GET', `/api/jobs/${ids[0]}/tasks?stage=reply&limit=10`);
    expect(tasks.status).toBe(200);
    expect((tasks.json.tasks as unknown[]).length).toBe(10);
    expect(typeof tasks.json.nextCursor).toBe('string');
  }, 180_000);

  it('an empty SERVICE_BUS_MAX_DELIVERY_COUNT / STORAGE_MAX_DEQUEUE_COUNT leaves a failing task its retries', async (ctx) => {
    if (missing) return ctx.skip();
    const host = await handlers.host();
    expect(host.config.serviceBus.maxDeliveryCount).toBe(10);
    expect(host.config.storageQueue.maxDequeueCount).toBe(5);
    const lanes = hostLanes();
    for (const [useSb, stageLane, taskLane] of [
      [true, lanes[0]!, lanes[1]!],
      [false, lanes[2]!, lanes[3]!],
    ] as const) {
      const sub = await http('POST', '/api/jobs/submit/flaky', {
        params: {},
        use_service_bus: useSb,
        // Unique per run of the test (a retry of the test must create its job again).
        idempotencyKey: `flaky-${useSb}-${randomUUID()}`,
      });
      expect(sub.status).toBe(202);
      const jobId = sub.json.jobId as string;
      // The stage message fans the one task out.
      const deadline = Date.now() + 60_000;
      while ((await host.yard.getJob(jobId))?.stages[0]?.total !== 1) {
        await pump([stageLane]);
        if (Date.now() > deadline) throw new Error('stage never fanned out');
      }
      // Its first delivery fails: the trigger must ask for a retry, not a dead-letter.
      let outcome: unknown;
      while (outcome === undefined) {
        const [m] = await taskLane.transport.receive('task', {
          maxMessages: 1,
          waitMs: 200,
          visibilityTimeoutMs: 30_000,
        });
        if (!m) {
          if (Date.now() > deadline) throw new Error('task message never arrived');
          continue;
        }
        if (!m.body.includes(jobId)) {
          // Left on the queue by an earlier test: handled as the host would, then looked past.
          await taskLane
            .handler(asHostDelivers(m.body), triggerContext(taskLane, m))
            .catch(() => {});
          await taskLane.transport.settle([{ message: m, action: 'complete' }]);
          continue;
        }
        expect(m.deliveryCount).toBe(1);
        outcome = await taskLane.handler(asHostDelivers(m.body), triggerContext(taskLane, m)).then(
          () => 'completed',
          (err: unknown) => err,
        );
        await taskLane.transport.settle([{ message: m, action: 'complete' }]);
      }
      expect(outcome, taskLane.name).toBeInstanceOf(RetryLater);
      expect((outcome as RetryLater).settlement.action, taskLane.name).toBe('retry');
      const job = await host.yard.getJob(jobId);
      expect(job?.stages[0]?.failed, taskLane.name).toBe(0);
    }
  }, 120_000);

  it('bad input is a 4xx on PostgreSQL too: U+0000 in ids and keys, unknown keys next to params', async (ctx) => {
    if (missing) return ctx.skip();
    const status = await http('GET', '/api/jobs/status/a%00b');
    expect(status.status).toBe(400);
    expect(status.json.error).toMatchObject({
      code: 'INVALID_INPUT',
      details: [{ path: 'jobId' }],
    });
    expect((await http('GET', '/api/jobs/a%00b/tasks')).status).toBe(400);
    const key = await http('POST', '/api/jobs/submit/hello_world', {
      params: { n: 1 },
      idempotencyKey: 'k\u0000',
    });
    expect(key.status).toBe(400);
    expect(key.json.error).toMatchObject({ details: [{ path: 'idempotencyKey' }] });
    const misspelt = await http('POST', '/api/jobs/submit/hello_world', {
      params: { n: 3 },
      idempotency_key: 'k',
    });
    expect(misspelt.status).toBe(400);
    expect(misspelt.json.error).toMatchObject({
      code: 'INVALID_INPUT',
      details: [{ path: 'idempotency_key' }],
    });
    // The store itself treats text it cannot hold as bad input, not as an outage.
    const { yard } = await handlers.host();
    await expect(yard.getJob('a\u0000b')).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('HTTP errors come back as JSON with a code; probes answer', async (ctx) => {
    if (missing) return ctx.skip();
    const invalid = await http('POST', '/api/jobs/submit/hello_world', { n: -3 });
    expect(invalid.status).toBe(400);
    expect(invalid.json.error).toMatchObject({
      code: 'INVALID_INPUT',
      details: [{ path: 'params.n' }],
    });
    expect((await http('POST', '/api/jobs/submit/nope', {})).json.error).toMatchObject({
      code: 'UNKNOWN_JOB',
    });
    expect((await http('POST', '/api/jobs/submit/hello_world', '{"n":')).json.error).toMatchObject({
      code: 'MALFORMED_JSON',
    });
    expect((await http('GET', '/api/jobs/status/nope')).status).toBe(404);
    const cancel = await http('POST', `/api/jobs/nope/cancel`);
    expect(cancel.status).toBe(404);
    expect((await http('GET', '/healthz')).json).toEqual({ ok: true });
    const ready = await http('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json.checks).toMatchObject({
      store: { ok: true },
      'transport:servicebus': { ok: true },
      'transport:storagequeue': { ok: true },
    });
  }, 60_000);

  it('a malformed queue message makes the trigger throw (the host dead-letters it after its retries)', async (ctx) => {
    if (missing) return ctx.skip();
    const context = new InvocationContext({
      functionName: 'sbTasks',
      triggerMetadata: { deliveryCount: 1, messageId: 'm-1' },
      ...quiet,
    });
    await expect(handlers.serviceBusTasks('not an envelope', context)).rejects.toThrow(
      /dead-letter requested: MalformedMessage/,
    );
    const sqContext = new InvocationContext({
      functionName: 'sqTasks',
      triggerMetadata: { dequeueCount: 5, id: 'q-1' },
      ...quiet,
    });
    await expect(handlers.storageTasks({ hello: 'world' }, sqContext)).rejects.toThrow(
      /MalformedMessage: not a Switchyard envelope/,
    );
  });

  it('the timer runs a reconciler pass', async (ctx) => {
    if (missing) return ctx.skip();
    const timer: Timer = {
      isPastDue: false,
      schedule: { adjustForDST: false },
      scheduleStatus: { last: '', next: '', lastUpdated: '' },
    };
    const infos: unknown[] = [];
    const context = new InvocationContext({
      functionName: 'reconcile',
      logHandler: (level, ...args) => {
        if (level === 'information') infos.push(args);
      },
    });
    await handlers.reconcileTimer(timer, context);
    expect(JSON.stringify(infos)).toContain('reconciler pass');
    await handlers.schedulesTimer(timer, context);
    expect(JSON.stringify(infos)).toContain('scheduler pass');
  });
});

describe('schedules', () => {
  it("the timer evaluates the jobs module's schedules (SWITCHYARD_JOBS): a fire submits its job", async (ctx) => {
    if (missing) return ctx.skip();
    // A schema of its own: the other timer test's scheduler lease is not in the way.
    const own = `${schema}_sched`;
    const fn = createFunctionHandlers({
      DATABASE_URL,
      DATABASE_SCHEMA: own,
      SWITCHYARD_JOBS: fileURLToPath(
        new URL('../../../packages/cli/test/fixtures/every-second.ts', import.meta.url),
      ),
    });
    const timer: Timer = {
      isPastDue: false,
      schedule: { adjustForDST: false },
      scheduleStatus: { last: '', next: '', lastUpdated: '' },
    };
    const passes: { fired: number }[] = [];
    const context = new InvocationContext({
      functionName: 'schedules',
      logHandler: (level, message, fields) => {
        if (level === 'information' && message === 'scheduler pass')
          passes.push(fields as { fired: number });
      },
    });
    try {
      // The first pass starts the schedule; a later one (a second on) fires.
      const deadline = Date.now() + 30_000;
      do {
        await fn.schedulesTimer(timer, context);
        await new Promise((r) => setTimeout(r, 300));
      } while (!passes.some((p) => p.fired > 0) && Date.now() < deadline);
      expect(passes.some((p) => p.fired > 0)).toBe(true);
      const { yard } = await fn.host();
      const [schedule] = await yard.listSchedules();
      expect(schedule).toMatchObject({ name: 'every-second', job: 'marked' });
      expect(await yard.getJob(schedule!.lastJobId!)).toMatchObject({
        name: 'marked',
        params: { fireAt: schedule!.lastFireAt!.toISOString() },
      });
    } finally {
      await fn.close();
      await db?.query(`DROP SCHEMA IF EXISTS ${own} CASCADE`).catch(() => {});
    }
  });
});

describe('registrations', () => {
  it('registers every function once, in one place, with triggers that follow the settings', () => {
    const settings = {
      ENABLE_SERVICE_BUS: 'true',
      SERVICE_BUS_CONNECTION_STRING:
        'Endpoint=sb://ns.example;SharedAccessKeyName=k;SharedAccessKey=v',
      SERVICE_BUS_JOB_QUEUE: 'orders-jobs',
      SERVICE_BUS_TASK_QUEUE: 'orders-tasks',
      ENABLE_STORAGE_QUEUE: 'true',
      STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true',
      STORAGE_JOB_QUEUE: 'orders-sq-jobs',
      STORAGE_TASK_QUEUE: '',
    };
    const calls = registrations(createFunctionHandlers(settings), settings);
    const summary = calls.map((c) => [
      c.kind,
      c.name,
      c.options.route ?? c.options.queueName ?? c.options.schedule,
      c.options.authLevel ?? c.options.connection ?? null,
    ]);
    expect(summary).toEqual([
      ['http', 'submit', 'api/jobs/submit/{jobName}', 'function'],
      ['http', 'status', 'api/jobs/status/{jobId}', 'function'],
      ['http', 'metrics', 'api/metrics/comparison', 'function'],
      ['http', 'tasks', 'api/jobs/{jobId}/tasks', 'function'],
      ['http', 'cancel', 'api/jobs/{jobId}/cancel', 'function'],
      ['http', 'listJobs', 'api/jobs', 'function'],
      ['http', 'retry', 'api/jobs/{jobId}/retry', 'function'],
      ['http', 'retryJobs', 'api/jobs/retry', 'function'],
      ['http', 'cancelJobs', 'api/jobs/cancel', 'function'],
      ['http', 'purgeJobs', 'api/jobs/purge', 'function'],
      ['http', 'listSchedules', 'api/schedules', 'function'],
      ['http', 'scheduleAction', 'api/schedules/{name}/{action}', 'function'],
      ['http', 'healthz', 'healthz', 'anonymous'],
      ['http', 'readyz', 'readyz', 'anonymous'],
      ['serviceBusQueue', 'sbJobs', 'orders-jobs', 'SERVICE_BUS_CONNECTION_STRING'],
      ['serviceBusQueue', 'sbTasks', 'orders-tasks', 'SERVICE_BUS_CONNECTION_STRING'],
      ['storageQueue', 'sqJobs', 'orders-sq-jobs', 'STORAGE_CONNECTION_STRING'],
      ['storageQueue', 'sqTasks', 'sq-tasks', 'STORAGE_CONNECTION_STRING'],
      ['timer', 'reconcile', '0 */1 * * * *', null],
      ['timer', 'schedules', '*/10 * * * * *', null],
    ]);
    for (const c of calls) expect(typeof c.options.handler).toBe('function');
    // HEAD wherever GET is answered: the host refuses a method a function does not list.
    for (const c of calls.filter((c) => c.kind === 'http'))
      if ((c.options.methods as string[] | undefined)?.includes('GET'))
        expect(c.options.methods, c.name).toContain('HEAD');
    // The Functions host refuses an app with two functions of one name.
    const all = calls.map((c) => c.name);
    expect(new Set(all).size).toBe(all.length);
  });

  it("registers a path's triggers only when it is enabled, on the Functions storage by default", () => {
    const names = (settings: Record<string, string>) =>
      registrations(createFunctionHandlers(settings), settings)
        .filter((c) => c.kind !== 'http')
        .map(
          (c) =>
            `${c.name}:${String(c.options.queueName ?? '')}:${String(c.options.connection ?? '')}`,
        );
    expect(names({})).toEqual(['reconcile::', 'schedules::']);
    expect(
      names({ ENABLE_STORAGE_QUEUE: 'true', AzureWebJobsStorage: 'UseDevelopmentStorage=true' }),
    ).toEqual([
      'sqJobs:sq-jobs:AzureWebJobsStorage',
      'sqTasks:sq-tasks:AzureWebJobsStorage',
      'reconcile::',
      'schedules::',
    ]);
  });

  it('with *_PRIORITY_LANES, each task lane queue gets a trigger of its own', () => {
    const settings = {
      ENABLE_SERVICE_BUS: 'true',
      SERVICE_BUS_CONNECTION_STRING:
        'Endpoint=sb://ns.example;SharedAccessKeyName=k;SharedAccessKey=v',
      SERVICE_BUS_PRIORITY_LANES: 'true',
      ENABLE_STORAGE_QUEUE: 'true',
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      STORAGE_PRIORITY_LANES: 'true',
    };
    const h = createFunctionHandlers(settings);
    const triggers = registrations(h, settings).filter((c) => c.kind.endsWith('Queue'));
    expect(triggers.map((c) => `${c.name}:${String(c.options.queueName)}`)).toEqual([
      'sbJobs:sb-jobs',
      'sbTasksHigh:sb-tasks-high',
      'sbTasks:sb-tasks',
      'sbTasksLow:sb-tasks-low',
      'sqJobs:sq-jobs',
      'sqTasksHigh:sq-tasks-high',
      'sqTasks:sq-tasks',
      'sqTasksLow:sq-tasks-low',
    ]);
    // Every lane's trigger runs task messages.
    for (const c of triggers.filter((t) => t.name.startsWith('sbTasks')))
      expect(c.options.handler).toBe(h.serviceBusTasks);
    for (const c of triggers.filter((t) => t.name.startsWith('sqTasks')))
      expect(c.options.handler).toBe(h.storageTasks);
  });

  it('a malformed setting fails registration naming it (not a trigger on the wrong queue)', () => {
    const settings = { SERVICE_BUS_MAX_DELIVERY_COUNT: 'abc', STORAGE_TASK_QUEUE: 'Bad_Name' };
    expect(() => registrations(createFunctionHandlers(settings), settings)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_ERROR',
        issues: [
          expect.objectContaining({ path: 'SERVICE_BUS_MAX_DELIVERY_COUNT' }),
          expect.objectContaining({ path: 'STORAGE_TASK_QUEUE' }),
        ],
      }),
    );
  });

  it('importing the entry point outside the host registers nothing and does not connect', async () => {
    const mod = await import('../src/index.js');
    expect(typeof mod.handlers.httpApi).toBe('function');
  });
});
