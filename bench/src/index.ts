/**
 * `npm run bench -- <scenario> [options]`: prints human figures on stderr and, with `--json`, a
 * JSON object as the last line of stdout.
 *
 *   memory        hello_world on the memory drivers at n = 1,000 / 10,000 / 100,000
 *   postgres      batch creation vs COPY, hello_world on PostgreSQL, graphile-worker and pg-boss
 *   storagequeue  sequential vs batched sends through Azurite behind a latency proxy
 *   servicebus    single vs batched sends through the emulator behind a latency proxy
 *   azure-limits  hello_world on Service Bus (standard profile) and Storage Queues (throttled
 *                 Azurite) at the services' real limits, with operations and estimated cost
 *   otel          hello_world at n = 100,000 without an OpenTelemetry SDK, 1 % sampled, always on
 *   purge         a running job's tasks/s on PostgreSQL while 1,000,000 finished task rows are purged
 *   fairness      a one-task job's completion time alone and behind a big hello_world, and the big
 *                 job's tasks/s, with and without the fairness window, on memory, PostgreSQL, Azurite
 *                 and the Service Bus emulator
 */
import { parseArgs } from 'node:util';

const USAGE =
  'usage: npm run bench -- memory|postgres|storagequeue|servicebus|azure-limits|otel|purge|fairness [--n N[,N…]] [--rows N] [--latency-ms N] [--path P[,P…]] [--skip-baseline] [--rounds N] [--part packed|floor|fused-floor|defaults|prefetch|claims|young-gen|e2e] [--window W|off] [--prefetch P] [--json]\n' +
  '  --path (repeatable): azure-limits servicebus|storagequeue|backoff; fairness memory|postgres|storagequeue|servicebus';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      n: { type: 'string' },
      'latency-ms': { type: 'string' },
      path: { type: 'string', multiple: true },
      'skip-baseline': { type: 'boolean', default: false },
      rounds: { type: 'string' },
      window: { type: 'string' },
      prefetch: { type: 'string' },
      rows: { type: 'string' },
      part: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  const scenario = positionals[0];
  if (values.help || !scenario) {
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const sizes = values.n?.split(',').map((s) => Number(s.replace(/_/g, '')));
  if (sizes?.some((n) => !Number.isInteger(n) || n <= 0))
    throw new UsageError('--n takes positive integers, comma-separated');
  const latencyMs = values['latency-ms'] === undefined ? undefined : Number(values['latency-ms']);
  // --path a --path b, or --path a,b
  const paths = values.path?.flatMap((p) => p.split(',')).filter((p) => p !== '');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(
    `# ${scenario} on ${process.platform} ${process.arch}, Node ${process.version}, ${(await import('node:os')).cpus().length} cores`,
  );
  let result: unknown;
  switch (scenario) {
    case 'memory': {
      const { runMemoryBench } = await import('./memory.js');
      const window = values.window === 'off' ? false : positiveInteger(values.window, '--window');
      result = await runMemoryBench({
        ...(sizes ? { n: sizes } : {}),
        ...(window === undefined ? {} : { window }),
        log,
      });
      break;
    }
    case 'postgres': {
      const { runPostgresBench, POSTGRES_PARTS } = await import('./postgres.js');
      const part = POSTGRES_PARTS.find((p) => p === values.part);
      if (values.part !== undefined && part === undefined)
        throw new UsageError(`--part takes ${POSTGRES_PARTS.join(', ')}`);
      result = await runPostgresBench({
        ...(sizes ? { n: sizes[0] } : {}),
        json: values.json,
        ...(part ? { part } : {}),
      });
      break;
    }
    case 'storagequeue': {
      const { runStorageQueueBench } = await import('./storagequeue.js');
      result = await runStorageQueueBench({
        latencyMs: latencyMs ?? 20,
        json: values.json,
        ...(sizes ? { n: sizes[0] } : {}),
      });
      break;
    }
    case 'servicebus': {
      const { runServiceBusBench } = await import('./servicebus.js');
      result = await runServiceBusBench({
        latencyMs: latencyMs ?? 20,
        json: values.json,
        ...(sizes ? { n: sizes } : {}),
      });
      break;
    }
    case 'azure-limits': {
      const { runAzureLimitsBench } = await import('./azure-limits.js');
      const known = ['servicebus', 'storagequeue', 'backoff'] as const;
      const isKnown = (p: string): p is (typeof known)[number] =>
        (known as readonly string[]).includes(p);
      if (paths && !paths.every(isKnown))
        throw new UsageError('--path takes servicebus, storagequeue or backoff');
      result = await runAzureLimitsBench({
        ...(latencyMs === undefined ? {} : { latencyMs }),
        ...(sizes ? { n: sizes } : {}),
        ...(paths?.length ? { paths: paths.filter(isKnown) } : {}),
        baseline: !values['skip-baseline'],
      });
      break;
    }
    case 'otel': {
      const { runOtelBench } = await import('./otel.js');
      const rounds = positiveInteger(values.rounds, '--rounds');
      result = await runOtelBench({
        log,
        ...(sizes ? { n: sizes[0] } : {}),
        ...(rounds ? { rounds } : {}),
      });
      break;
    }
    case 'purge': {
      const { runPurgeBench } = await import('./purge.js');
      result = await runPurgeBench({
        ...(sizes ? { n: sizes[0] } : {}),
        ...(values.rows ? { rows: Number(values.rows.replace(/_/g, '')) } : {}),
        log,
      });
      break;
    }
    case 'fairness': {
      const { FAIRNESS_PATHS, runFairnessBench } = await import('./fairness.js');
      type Path = (typeof FAIRNESS_PATHS)[number];
      const isPath = (p: string): p is Path => (FAIRNESS_PATHS as readonly string[]).includes(p);
      if (paths && !paths.every(isPath))
        throw new UsageError(
          `--path takes ${FAIRNESS_PATHS.join(', ')} (repeatable or comma-separated)`,
        );
      if (sizes && sizes.length > 1) throw new UsageError('--n takes one size for fairness');
      const rounds = positiveInteger(values.rounds, '--rounds');
      const window = positiveInteger(values.window, '--window');
      const prefetch = values.prefetch === undefined ? undefined : Number(values.prefetch);
      if (prefetch !== undefined && (!Number.isSafeInteger(prefetch) || prefetch < 0))
        throw new UsageError('--prefetch takes an integer ≥ 0');
      result = await runFairnessBench({
        ...(paths?.length ? { paths: [...new Set(paths.filter(isPath))] } : {}),
        ...(sizes ? { n: sizes[0] } : {}),
        ...(rounds ? { rounds } : {}),
        ...(window === undefined ? {} : { window }),
        ...(prefetch === undefined ? {} : { prefetch }),
        log,
      });
      break;
    }
    default:
      process.stderr.write(`unknown scenario "${scenario}"\n${USAGE}\n`);
      process.exitCode = 2;
      return;
  }
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** A bad flag: reported with the usage, without a stack. */
class UsageError extends Error {}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});

/** A flag's positive integer, or undefined when the flag is absent. */
function positiveInteger(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag} takes a positive integer`);
  return n;
}
