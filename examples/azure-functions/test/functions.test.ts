/**
 * The Functions app end to end, with this test as the Functions host: HTTP requests go to the
 * exported HTTP handler as real `HttpRequest`s; messages are pulled from the real queues (Service
 * Bus emulator, Azurite) and handed to the trigger handlers with trigger metadata, then settled the
 * way the host settles them (return → complete, throw → abandon / visible again). State lives in
 * PostgreSQL (own schema).
 */
import { randomUUID } from 'node:crypto';
import { HttpRequest, InvocationContext, type Timer } from '@azure/functions';
import type { ReceivedMessage, Settlement, Transport } from '@switchyard/core/driver';
import { type ServiceBusEmulator, startEmulator } from '@switchyard/servicebus-emulator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Azurite, startAzurite } from '../../../packages/driver-storagequeue/test/azurite.js';
import {
  createFunctionHandlers,
  type FunctionHandlers,
  type QueueHandler,
} from '../src/handlers.js';
import { type FunctionsApp, registerFunctions } from '../src/register.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `fn_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

let azurite: Azurite | undefined;
let emulator: ServiceBusEmulator | undefined;
let db: pg.Client | undefined;
let handlers: FunctionHandlers;
let missing: string | undefined;

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
  handlers = createFunctionHandlers({
    ENABLE_SERVICE_BUS: 'true',
    SERVICE_BUS_CONNECTION_STRING: emulator!.connectionString,
    ENABLE_STORAGE_QUEUE: 'true',
    STORAGE_CONNECTION_STRING: azurite!.connectionString,
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
  });
}, 120_000);

afterAll(async () => {
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
          const context = new InvocationContext({
            functionName: lane.name,
            triggerMetadata,
            ...quiet,
          });
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
    const sbT = host.transports.get('servicebus')!;
    const sqT = host.transports.get('storagequeue')!;
    const lanes: Lane[] = [
      { transport: sbT, queue: 'stage', handler: handlers.serviceBusJobs, name: 'sbJobs' },
      { transport: sbT, queue: 'task', handler: handlers.serviceBusTasks, name: 'sbTasks' },
      { transport: sqT, queue: 'stage', handler: handlers.storageJobs, name: 'sqJobs' },
      { transport: sqT, queue: 'task', handler: handlers.storageTasks, name: 'sqTasks' },
    ];
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
      /MalformedMessage/,
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

describe('registrations', () => {
  it('registers every function once, in one place, with the right triggers', () => {
    const calls: { kind: string; name: string; options: Record<string, unknown> }[] = [];
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
    const h = createFunctionHandlers({});
    registerFunctions(fake, h);
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
      ['http', 'schedules', 'api/schedules', 'function'],
      ['http', 'scheduleAction', 'api/schedules/{name}/{action}', 'function'],
      ['http', 'healthz', 'healthz', 'anonymous'],
      ['http', 'readyz', 'readyz', 'anonymous'],
      ['serviceBusQueue', 'sbJobs', 'sb-jobs', 'SERVICE_BUS_CONNECTION_STRING'],
      ['serviceBusQueue', 'sbTasks', 'sb-tasks', 'SERVICE_BUS_CONNECTION_STRING'],
      ['storageQueue', 'sqJobs', 'sq-jobs', 'AzureWebJobsStorage'],
      ['storageQueue', 'sqTasks', 'sq-tasks', 'AzureWebJobsStorage'],
      ['timer', 'reconcile', '0 */1 * * * *', null],
      ['timer', 'schedules', '*/10 * * * * *', null],
    ]);
    for (const c of calls) expect(typeof c.options.handler).toBe('function');
  });

  it('importing the entry point outside the host registers nothing and does not connect', async () => {
    const mod = await import('../src/index.js');
    expect(typeof mod.handlers.httpApi).toBe('function');
  });
});
