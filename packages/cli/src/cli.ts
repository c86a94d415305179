import { parseArgs } from 'node:util';
import {
  type FieldIssue,
  isPriority,
  isSwitchyardError,
  type JobView,
  parseInstant,
  type QueueKind,
  type SubmitOptions,
  SwitchyardError,
  silentLogger,
} from '@switchyard/core';
import type { TaskRecord, TaskStatus, Transport } from '@switchyard/core/driver';
import { planDashboard } from './dashboard.js';
import { createYardFromEnv, type YardFromEnv } from './env.js';
import { DEFAULT_JOBS_MODULE, loadJobs } from './jobs.js';
import {
  OPERATIONS_USAGE,
  type OperationCommand,
  parseOperation,
  runOperation,
} from './operations.js';
import { jobSummary, metricsTable, Progress, table, tasksTable } from './render.js';
import { loadSchedules, parseSchedulesArgs, runSchedules } from './schedules.js';

/**
 * Exit codes of the `switchyard` command:
 * - 0 `OK` — done (for `submit --watch` / `status`: the job succeeded or is still running);
 * - 1 `JOB_FAILED` — the job failed or was cancelled, or the job id is unknown, or a `retry` /
 *   `cancel` of one job changed nothing;
 * - 2 `USAGE` — bad command line: unknown command or option, missing argument, invalid params;
 * - 3 `CONFIG` — bad configuration: environment variables (each one named), jobs module, secrets;
 * - 4 `BACKEND` — the database or a queue service is unreachable or refused access;
 * - 5 `INTERNAL` — anything else (a bug: please report it);
 * - 130 — interrupted (Ctrl-C) while watching.
 */
export const EXIT = {
  OK: 0,
  JOB_FAILED: 1,
  USAGE: 2,
  CONFIG: 3,
  BACKEND: 4,
  INTERNAL: 5,
  INTERRUPTED: 130,
} as const;

/** Where the CLI writes and what it reads; `process` by default, fakes in tests. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Aborted on SIGINT/SIGTERM (`work`, `--watch`). */
  signal?: AbortSignal;
}

export const USAGE = `switchyard — submit and watch Switchyard jobs, compare paths, run a worker

Usage: switchyard <command> [arguments] [options]

Commands:
  submit <job> [--param k=v …] [--params-json JSON] [--transport NAME] [--idempotency-key KEY]
         [--delay MS | --run-at TIME] [--priority high|normal|low] [--watch] [--work]
                      submit a job (delayed: 'scheduled' until due); --watch shows progress per stage
  status <jobId> [--watch] [--work]
                      status, current stage, per-stage counts, result or error
  metrics             the per-path comparison (jobs, latency, queue wait, tasks/s, retries, poison)
  tasks <jobId> [--status S] [--stage S] [--limit N]
                      a job's tasks (status: pending|running|succeeded|failed|cancelled)
  jobs [--status S] [--name N] [--transport T] [--priority P] [--since ISO|DURATION] [--limit N] [--cursor C]
                      jobs newest first, a page at a time, with each one's progress
  retry <jobId> [--stage S] [--task ID …]  |  retry --status S [--name N] [--transport T] [--priority P] [--since …]
                      re-run a job's failed tasks, or those of every job a filter matches
  cancel <jobId>  |  cancel --status S [--name N] [--transport T] [--priority P] [--since …]
                      cancel a job, or every unfinished job a filter matches
  purge --status S [--older-than DURATION] [--name N]
                      delete finished jobs (a status or --older-than is required)
  dead-letters list <transport> [--queue stage|task] [--limit N]
  dead-letters replay <transport> [--queue stage|task] [--limit N]
                      inspect or re-queue a path's poison messages
  work [--concurrency N] [--transport NAME …]
                      run a worker until SIGINT/SIGTERM (drains in-flight tasks; evaluates schedules)
  schedules [list | pause <name> | resume <name> | trigger <name>]
                      the jobs module's cron schedules (its \`schedules\` export), last and next fire
  dashboard [--port N] [--work]
                      serve the web dashboard on http://127.0.0.1:4000 until SIGINT/SIGTERM

Options:
  --json              machine-readable output on stdout (errors too: {"error":{code,message,details}})
  --jobs MODULE       module exporting the job definitions (env SWITCHYARD_JOBS; default ${DEFAULT_JOBS_MODULE})
  --data-dir DIR      embedded PGlite folder when DATABASE_URL is unset (env SWITCHYARD_DATA_DIR; default .switchyard/data)
  --work              also run a worker in this process while watching (automatic on the embedded store)
  -h, --help          this help; "switchyard <command> --help" for one command's options

Parameters: --param n=100 --param label=hi (values are JSON when they parse, else strings;
dotted keys nest: --param a.b=1).

Configuration: the same environment variables as the container host (configFromEnv: ENABLE_SERVICE_BUS,
SERVICE_BUS_*, ENABLE_STORAGE_QUEUE, STORAGE_*, AzureWebJobsStorage, DATABASE_URL, KEY_VAULT_URL,
SWITCHYARD_DEFAULT_TRANSPORT …). With none set, everything runs on an embedded PGlite folder.

Exit codes: 0 ok · 1 job failed, cancelled or not found, or a retry/cancel of one job changed
nothing · 2 usage error · 3 configuration error · 4 backend unreachable · 5 internal error ·
130 interrupted`;

/** `switchyard <command> --help`: the command's own usage and options. */
const COMMAND_USAGE: Record<string, string> = {
  submit: `Usage: switchyard submit <job> [--param k=v …] [--params-json JSON] [--transport NAME]
                         [--idempotency-key KEY] [--delay MS | --run-at TIME]
                         [--priority high|normal|low] [--watch] [--work] [--json]

Submits a job (idempotent: the same params, or the same key, return the same job).

  -p, --param k=v          a parameter; values are JSON when they parse, else strings; a.b=1 nests
  --params-json JSON       all parameters as one JSON object (--param values override it)
  --transport NAME         the path to run on (default: SWITCHYARD_DEFAULT_TRANSPORT, else the first configured)
  --idempotency-key KEY    identity of the job instead of its params
  --delay MS               run it this many milliseconds from now (status 'scheduled' until then)
  --run-at TIME            run it at this ISO 8601 time, e.g. 2027-01-01T09:00:00Z (same)
  --priority LEVEL         high, normal (default) or low: high runs before other jobs' tasks,
                           low after them, never starved
  -w, --watch              show progress per stage and wait for the end (exit 1 if it fails)
  --work                   also run a worker in this process while watching`,
  status: `Usage: switchyard status <jobId> [--watch] [--work] [--json]

Status, path, current stage, per-stage counts, duration, result or error (exit 1: failed,
cancelled or not found).

  -w, --watch              wait for the end, showing progress
  --work                   also run a worker in this process while watching`,
  metrics: `Usage: switchyard metrics [--json]

The per-path comparison: jobs, job latency mean/p95, queue wait, tasks/s, timeouts, retries, poison.`,
  tasks: `Usage: switchyard tasks <jobId> [--status S] [--stage S] [--limit N] [--json]

A job's tasks.

  --status S               pending, running, succeeded, failed or cancelled
  --stage S                a stage name or index
  --limit N                at most N tasks (default 100)`,
  'dead-letters': `Usage: switchyard dead-letters list <transport> [--queue stage|task] [--limit N] [--json]
       switchyard dead-letters replay <transport> [--queue stage|task] [--limit N] [--json]

Lists a path's poison messages (queue, id, reason, description, when dead-lettered), or moves
them back to their queue.

  --queue stage|task       one queue (default both)
  --limit N                at most N messages per queue (default 100)`,
  ...OPERATIONS_USAGE,
  work: `Usage: switchyard work [--concurrency N] [--transport NAME …] [--json]

Runs a worker until SIGINT/SIGTERM, then drains (in-flight tasks finish or are released).

  --concurrency N          task handlers at once (default 64)
  --transport NAME         only these paths (repeatable; default all configured)`,
};

const COMMON_OPTIONS = `
Options of every command:
  --json                   machine-readable output on stdout
  --jobs MODULE            module exporting the job definitions (env SWITCHYARD_JOBS; default ${DEFAULT_JOBS_MODULE})
  --data-dir DIR           embedded PGlite folder when DATABASE_URL is unset (env SWITCHYARD_DATA_DIR)
  -h, --help               this help; "switchyard --help" lists the commands`;

class UsageError extends Error {}

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  jobs: { type: 'string' },
  'data-dir': { type: 'string' },
  param: { type: 'string', short: 'p', multiple: true },
  'params-json': { type: 'string' },
  transport: { type: 'string', multiple: true },
  'idempotency-key': { type: 'string' },
  delay: { type: 'string' },
  'run-at': { type: 'string' },
  priority: { type: 'string' },
  watch: { type: 'boolean', short: 'w' },
  work: { type: 'boolean' },
  status: { type: 'string' },
  stage: { type: 'string' },
  limit: { type: 'string' },
  queue: { type: 'string' },
  concurrency: { type: 'string' },
  port: { type: 'string' },
  name: { type: 'string' },
  since: { type: 'string' },
  cursor: { type: 'string' },
  task: { type: 'string', multiple: true },
  'older-than': { type: 'string' },
} as const;

type OptionName = keyof typeof OPTIONS;
const GLOBAL: OptionName[] = ['json', 'help', 'jobs', 'data-dir'];
const COMMANDS: Record<string, OptionName[]> = {
  submit: [
    'param',
    'params-json',
    'transport',
    'idempotency-key',
    'delay',
    'run-at',
    'priority',
    'watch',
    'work',
  ],
  status: ['watch', 'work'],
  metrics: [],
  tasks: ['status', 'stage', 'limit'],
  'dead-letters': ['queue', 'limit'],
  work: ['concurrency', 'transport'],
  schedules: [],
  dashboard: ['port', 'work'],
  jobs: ['status', 'name', 'transport', 'priority', 'since', 'limit', 'cursor'],
  retry: ['stage', 'task', 'status', 'name', 'transport', 'priority', 'since'],
  cancel: ['status', 'name', 'transport', 'priority', 'since'],
  purge: ['status', 'older-than', 'name'],
};
const TASK_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'];
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const BACKEND_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ServiceUnavailable',
  'ServiceCommunicationProblem',
]);

type Values = ReturnType<typeof parse>['values'];

/**
 * `--delay MS` / `--run-at TIME` as submit options (one at most).
 * @throws {UsageError} naming the option when its value is not a time
 */
function submitTime(delay: string | undefined, runAt: string | undefined): SubmitOptions {
  if (delay !== undefined && runAt !== undefined)
    throw new UsageError('--delay and --run-at cannot be given together');
  if (delay !== undefined) {
    const delayMs = Number(delay);
    if (delay.trim() === '' || !Number.isFinite(delayMs) || delayMs < 0)
      throw new UsageError(`--delay must be a number of milliseconds >= 0 (got "${delay}")`);
    return { delayMs };
  }
  if (runAt !== undefined) {
    // ISO 8601 only: `new Date("1")` would read a bare number as the year 2001.
    const at = parseInstant(runAt);
    if (!at)
      throw new UsageError(
        `--run-at must be an ISO 8601 time such as 2027-01-01T09:00:00Z, in the years 0001-9999 (got "${runAt}")`,
      );
    return { runAt: at };
  }
  return {};
}

/**
 * The command line's options and positionals. An option of one value given twice is refused:
 * `parseArgs` would keep the last, silently (`--older-than 30d --older-than 1s` purging a
 * minute-old job).
 */
function parse(argv: string[]) {
  const parsed = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
    tokens: true,
  });
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    const option = OPTIONS[token.name as keyof typeof OPTIONS];
    if (option?.type !== 'string' || ('multiple' in option && option.multiple)) continue;
    if (seen.has(token.name)) throw new Error(`--${token.name} may be given once`);
    seen.add(token.name);
  }
  return parsed;
}

/**
 * Runs the `switchyard` command line and resolves with its exit code (never throws).
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2));
 * ```
 */
export async function runCli(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  let json = argv.includes('--json');
  const out = (text: string) => io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  const err = (text: string) => io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  const fail = (code: number, errorCode: string, message: string, details?: unknown) => {
    err(`error: ${message}`);
    if (Array.isArray(details))
      for (const d of details as FieldIssue[]) err(`  ${d.path || '(value)'}: ${d.message}`);
    if (code === EXIT.USAGE) err('run "switchyard --help" for usage');
    if (json)
      out(
        JSON.stringify({
          error: { code: errorCode, message, ...(details === undefined ? {} : { details }) },
        }),
      );
    return code;
  };

  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (e) {
    return fail(EXIT.USAGE, 'USAGE', (e as Error).message);
  }
  json = values.json === true;
  const [command, ...args] = positionals;
  if (values.help || command === 'help' || command === undefined) {
    if (command === undefined && !values.help) {
      err(USAGE);
      if (json) out(JSON.stringify({ error: { code: 'USAGE', message: 'no command given' } }));
      return EXIT.USAGE;
    }
    // `switchyard submit --help` and `switchyard help submit`: that command's usage.
    const topic = command === 'help' ? args[0] : command;
    const usage = topic === undefined ? undefined : COMMAND_USAGE[topic];
    if (topic !== undefined && usage === undefined)
      return fail(EXIT.USAGE, 'USAGE', `unknown command "${topic}"`);
    out(usage === undefined ? USAGE : `${usage}\n${COMMON_OPTIONS}`);
    return EXIT.OK;
  }
  const allowed = COMMANDS[command];
  if (!allowed) return fail(EXIT.USAGE, 'USAGE', `unknown command "${command}"`);
  const misplaced = (Object.keys(values) as OptionName[]).filter(
    (k) => !GLOBAL.includes(k) && !allowed.includes(k),
  );
  if (misplaced.length > 0)
    return fail(
      EXIT.USAGE,
      'USAGE',
      `option ${misplaced.map((m) => `--${m}`).join(', ')} does not apply to "${command}"`,
    );

  let host: YardFromEnv | undefined;
  try {
    const plan = planCommand(command, args, values);
    // An empty --jobs or SWITCHYARD_JOBS counts as unset, as every variable does.
    const jobsModule = values.jobs?.trim() || io.env.SWITCHYARD_JOBS?.trim() || DEFAULT_JOBS_MODULE;
    const jobs = await loadJobs(jobsModule);
    host = await createYardFromEnv({
      jobs,
      schedules: await loadSchedules(jobsModule),
      env: io.env,
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      logger: silentLogger,
    });
    await host.yard.store.init?.();
    const ready = await host.yard.ready();
    if (!ready.ok) {
      const details = Object.entries(ready.checks)
        .filter(([, c]) => !c.ok)
        .map(([path, c]) => ({ path, message: c.error ?? 'unreachable' }));
      return fail(EXIT.BACKEND, 'BACKEND_UNREACHABLE', 'a backend is unreachable', details);
    }
    return await plan(host, { out, err, json, io });
  } catch (e) {
    if (e instanceof UsageError) return fail(EXIT.USAGE, 'USAGE', e.message);
    if (isSwitchyardError(e)) {
      switch (e.code) {
        case 'CONFIG_ERROR':
        case 'SECRET_NOT_FOUND':
          return fail(EXIT.CONFIG, e.code, e.message, e.issues);
        case 'INVALID_INPUT':
        case 'UNKNOWN_JOB':
        case 'UNKNOWN_TRANSPORT':
        case 'UNKNOWN_SCHEDULE':
        case 'NOT_SERIALIZABLE':
          return fail(EXIT.USAGE, e.code, e.message, e.issues);
        case 'JOB_NOT_FOUND':
          return fail(EXIT.JOB_FAILED, e.code, e.message);
        case 'BACKEND_ERROR':
        case 'AUTH_FAILED':
          return fail(EXIT.BACKEND, e.code, e.message);
        case 'ABORTED':
          return fail(EXIT.INTERRUPTED, e.code, 'interrupted: the job goes on without this watch');
      }
    }
    const code = (e as { code?: unknown })?.code;
    if (typeof code === 'string' && BACKEND_CODES.has(code))
      return fail(EXIT.BACKEND, 'BACKEND_ERROR', (e as Error).message);
    return fail(EXIT.INTERNAL, 'INTERNAL', e instanceof Error ? e.message : String(e));
  } finally {
    await host?.close().catch(() => {});
  }
}

interface Ctx {
  out: (text: string) => void;
  err: (text: string) => void;
  json: boolean;
  io: CliIo;
}

type Plan = (host: YardFromEnv, ctx: Ctx) => Promise<number>;

/** Checks the arguments before anything is opened, so a usage error never touches a backend. */
function planCommand(command: string, args: string[], values: Values): Plan {
  const arity = (n: number, names: string) => {
    if (args.length !== n)
      throw new UsageError(
        args.length < n ? `"${command}" needs ${names}` : `unexpected argument "${args[n]}"`,
      );
  };
  switch (command) {
    case 'submit': {
      arity(1, '<job>');
      const params = buildParams(values.param ?? [], values['params-json']);
      const transports = values.transport ?? [];
      if (transports.length > 1) throw new UsageError('--transport may be given once for submit');
      const options: SubmitOptions = {};
      // An empty value is a mistake to say, not an option to drop: it would change what runs.
      if (transports[0] !== undefined) {
        if (transports[0] === '') throw new UsageError('--transport must not be empty');
        options.transport = transports[0];
      }
      if (values['idempotency-key'] !== undefined) {
        if (values['idempotency-key'] === '')
          throw new UsageError('--idempotency-key must not be empty');
        options.idempotencyKey = values['idempotency-key'];
      }
      if (values.priority !== undefined) {
        if (!isPriority(values.priority))
          throw new UsageError('--priority must be high, normal or low');
        options.priority = values.priority;
      }
      Object.assign(options, submitTime(values.delay, values['run-at']));
      return async (host, ctx) => {
        const result = await host.yard.submit(args[0]!, params as never, options);
        if (!values.watch) {
          if (ctx.json) ctx.out(JSON.stringify(result));
          else
            ctx.out(
              `${result.created ? 'submitted' : 'exists'} ${result.jobId} (${result.status}, path ${result.transport})`,
            );
          return EXIT.OK;
        }
        if (!ctx.json)
          ctx.err(
            `${result.created ? 'submitted' : 'exists'} ${result.jobId} on ${result.transport}`,
          );
        return watch(host, ctx, result.jobId, values.work === true);
      };
    }
    case 'status': {
      arity(1, '<jobId>');
      return async (host, ctx) => {
        if (values.watch) return watch(host, ctx, args[0]!, values.work === true);
        const job = await host.yard.getJob(args[0]!);
        if (!job) throw notFound(args[0]!);
        ctx.out(ctx.json ? JSON.stringify(job) : jobSummary(job));
        return jobExit(job);
      };
    }
    case 'metrics':
      arity(0, '');
      return async (host, ctx) => {
        const report = await host.yard.metrics();
        ctx.out(ctx.json ? JSON.stringify(report) : metricsTable(report.transports));
        return EXIT.OK;
      };
    case 'tasks': {
      arity(1, '<jobId>');
      const status = values.status;
      if (status !== undefined && !TASK_STATUSES.includes(status))
        throw new UsageError(`--status must be one of ${TASK_STATUSES.join(', ')}`);
      const limit = positiveInt(values.limit, '--limit', 100);
      return async (host, ctx) => {
        const jobId = args[0]!;
        const job = await host.yard.store.getJob(jobId);
        if (!job) throw notFound(jobId);
        let stage: number | undefined;
        if (values.stage !== undefined) {
          const names = host.yard.jobs.get(job.name)?.stages.map((s) => s.name) ?? [];
          stage = /^\d+$/.test(values.stage) ? Number(values.stage) : names.indexOf(values.stage);
          if (stage < 0 || stage >= job.stageCount)
            throw new UsageError(`--stage: "${values.stage}" is not a stage of ${job.name}`);
        }
        const tasks: TaskRecord[] = [];
        let cursor: string | undefined;
        do {
          const page = await host.yard.store.listTasks(jobId, {
            limit: Math.min(1000, limit - tasks.length),
            ...(stage === undefined ? {} : { stage }),
            ...(status === undefined ? {} : { status: status as TaskStatus }),
            ...(cursor ? { cursor } : {}),
          });
          tasks.push(...page.tasks);
          cursor = page.nextCursor;
        } while (cursor && tasks.length < limit);
        if (ctx.json) ctx.out(JSON.stringify(cursor ? { tasks, nextCursor: cursor } : { tasks }));
        else ctx.out(tasksTable(tasks) + (cursor ? `\n(more: raise --limit)` : ''));
        return EXIT.OK;
      };
    }
    case 'dead-letters': {
      const [action, name] = args;
      if (action !== 'list' && action !== 'replay')
        throw new UsageError('dead-letters needs "list" or "replay"');
      arity(2, `${action} <transport>`);
      const queue = values.queue;
      if (queue !== undefined && queue !== 'stage' && queue !== 'task')
        throw new UsageError('--queue must be stage or task');
      const queues: QueueKind[] = queue ? [queue] : ['stage', 'task'];
      const limit = positiveInt(values.limit, '--limit', 100);
      return async (host, ctx) => {
        const transport = host.transports.get(name!);
        if (!transport)
          throw new UsageError(
            `unknown transport "${name}" (configured: ${[...host.transports.keys()].join(', ')})`,
          );
        if (!transport.listDeadLetters || !transport.replayDeadLetters)
          throw new UsageError(`transport "${name}" cannot list or replay dead letters`);
        if (action === 'replay') {
          const replayed: Record<string, number> = {};
          // The Switchyard's replay, not the transport's alone: it re-opens each replayed task so
          // the replay re-runs it (a terminal task's message would be dropped by the worker).
          for (const q of queues)
            replayed[q] = await host.yard.replayDeadLetters(name!, q, { limit });
          ctx.out(
            ctx.json
              ? JSON.stringify({ transport: name, replayed })
              : queues.map((q) => `replayed ${replayed[q]} ${q} message(s)`).join('\n'),
          );
          return EXIT.OK;
        }
        return listDeadLetters(transport, name!, queues, limit, ctx);
      };
    }
    case 'work': {
      arity(0, '');
      const concurrency = positiveInt(values.concurrency, '--concurrency', 64);
      const only = values.transport;
      return async (host, ctx) => {
        for (const t of only ?? [])
          if (!host.transports.has(t)) throw new UsageError(`unknown transport "${t}"`);
        const controller = new AbortController();
        const stop = () => controller.abort();
        ctx.io.signal?.addEventListener('abort', stop);
        const onSignal = () => {
          ctx.err('draining … (in-flight tasks finish or are released)');
          stop();
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        ctx.err(
          `worker on ${(only ?? host.yard.transportNames).join(', ')} (store ${host.storeLocation}); Ctrl-C stops`,
        );
        try {
          await host.yard.work({
            concurrency,
            signal: controller.signal,
            ...(only ? { transports: only } : {}),
          });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        if (ctx.json) ctx.out(JSON.stringify({ stopped: true }));
        return EXIT.OK;
      };
    }
    case 'schedules': {
      const parsed = parseSchedulesArgs(args);
      if (typeof parsed === 'string') throw new UsageError(parsed);
      return async (host, ctx) => {
        ctx.out(await runSchedules(host.yard, parsed, ctx.json));
        return EXIT.OK;
      };
    }
    case 'jobs':
    case 'retry':
    case 'cancel':
    case 'purge': {
      const op = parseOperation(command as OperationCommand, args, values);
      if (typeof op === 'string') throw new UsageError(op);
      return async (host, ctx) => {
        const { output, ok } = await runOperation(host.yard, op, ctx.json);
        ctx.out(output);
        return ok ? EXIT.OK : EXIT.JOB_FAILED;
      };
    }
    case 'dashboard': {
      arity(0, '');
      let run: ReturnType<typeof planDashboard>;
      try {
        run = planDashboard({ port: values.port, work: values.work === true });
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      return (host, ctx) => run(host, { ...ctx, env: ctx.io.env, signal: ctx.io.signal });
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function listDeadLetters(
  transport: Transport,
  name: string,
  queues: QueueKind[],
  limit: number,
  ctx: Ctx,
): Promise<number> {
  const letters = (
    await Promise.all(queues.map((q) => transport.listDeadLetters!(q, { limit })))
  ).flat();
  if (ctx.json) ctx.out(JSON.stringify({ transport: name, deadLetters: letters }));
  else if (letters.length === 0) ctx.out(`no dead letters on ${name}`);
  else
    ctx.out(
      table(
        ['queue', 'id', 'reason', 'description', 'dead-lettered'],
        letters.map((l) => [
          l.queue,
          l.id,
          l.reason,
          (l.description ?? '').slice(0, 60),
          l.deadLetteredAt?.toISOString() ?? '',
        ]),
      ),
    );
  return EXIT.OK;
}

async function watch(host: YardFromEnv, ctx: Ctx, jobId: string, work: boolean): Promise<number> {
  const controller = new AbortController();
  ctx.io.signal?.addEventListener('abort', () => controller.abort());
  const onSignal = () => controller.abort();
  // SIGTERM too (a process manager's stop): the worker below drains either way.
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // The embedded database lives in this process only: nobody else can run the job.
  const runWorker = work || host.storeLocation.startsWith('pglite:');
  const worker = new AbortController();
  const working = runWorker
    ? host.yard.work({ signal: worker.signal, waitMs: 200 })
    : Promise.resolve();
  const progress = ctx.json && !ctx.io.stderr.isTTY ? undefined : new Progress(ctx.io.stderr);
  try {
    const job = await host.yard.waitFor(jobId, {
      signal: controller.signal,
      pollIntervalMs: 200,
      ...(progress ? { onProgress: (j: JobView) => progress.update(j) } : {}),
    });
    progress?.update(job);
    ctx.out(ctx.json ? JSON.stringify(job) : `\n${jobSummary(job)}`);
    return jobExit(job);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    worker.abort();
    await working;
  }
}

function jobExit(job: JobView): number {
  return job.status === 'failed' || job.status === 'cancelled' ? EXIT.JOB_FAILED : EXIT.OK;
}

function notFound(jobId: string) {
  return new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,7}$/.test(value) || Number(value) < 1)
    throw new UsageError(`${name} must be a positive integer`);
  return Number(value);
}

/** `--param k=v` (JSON values when they parse, dotted keys nest) merged over `--params-json`. */
export function buildParams(pairs: string[], paramsJson?: string): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  if (paramsJson !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(paramsJson);
    } catch (e) {
      throw new UsageError(`--params-json is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new UsageError('--params-json must be a JSON object');
    params = parsed as Record<string, unknown>;
  }
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--param "${pair}" must look like key=value`);
    const path = pair.slice(0, eq).split('.');
    if (path.some((k) => k === '' || FORBIDDEN_KEYS.has(k)))
      throw new UsageError(`--param "${pair}": invalid key`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // not JSON: keep the text
    }
    let target = params;
    for (const key of path.slice(0, -1)) {
      const next = Object.hasOwn(target, key) ? target[key] : undefined;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) {
        const created: Record<string, unknown> = {};
        target[key] = created;
        target = created;
      } else target = next as Record<string, unknown>;
    }
    target[path.at(-1)!] = value;
  }
  return params;
}
