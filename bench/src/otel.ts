import { ExportResultCode } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { memoryStore, memoryTransport, type TelemetryOptions } from '@switchyard/core';
import { type HelloRun, round, runHello } from './hello.js';

/** Counts exported spans and drops them: the SDK's cost without a network in the way. */
class CountingExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (result: { code: ExportResultCode }) => void): void {
    this.spans += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

type Variant = 'noSdk' | 'sampled' | 'alwaysOn';

/** An SDK with the given sampler, batching spans to a counting exporter, and a meter provider. */
function sdk(sampler: Sampler) {
  const exporter = new CountingExporter();
  const tracerProvider = new BasicTracerProvider({
    sampler,
    spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 65_536 })],
  });
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
        exportIntervalMillis: 60_000,
      }),
    ],
  });
  return {
    telemetry: { tracerProvider, meterProvider } satisfies TelemetryOptions,
    exporter,
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/**
 * `hello_world` on the memory drivers three ways in one process — no OpenTelemetry SDK, an SDK
 * sampling 1 % of traces (parent-based: the decision is made once per job's trace), an SDK
 * recording every span — in interleaved rounds, so the ratios compare like with like.
 */
export async function runOtelBench(args: {
  n?: number;
  rounds?: number;
  log: (line: string) => void;
}) {
  const n = args.n ?? 100_000;
  const rounds = args.rounds ?? 2;
  const drivers = () => ({ store: memoryStore(), transport: memoryTransport() });
  await runHello(2000, drivers());
  const runs: Record<Variant, HelloRun[]> = { noSdk: [], sampled: [], alwaysOn: [] };
  const exported: Record<Variant, number> = { noSdk: 0, sampled: 0, alwaysOn: 0 };
  const order: Variant[] = ['noSdk', 'sampled', 'alwaysOn'];
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round: a drift in the machine's load does not favour one variant.
    for (const variant of [...order.slice(r % 3), ...order.slice(0, r % 3)]) {
      const otel =
        variant === 'noSdk'
          ? undefined
          : sdk(
              variant === 'sampled'
                ? new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.01) })
                : new AlwaysOnSampler(),
            );
      const run = await runHello(n, drivers(), otel ? { telemetry: otel.telemetry } : {});
      await otel?.shutdown();
      exported[variant] += otel?.exporter.spans ?? 0;
      runs[variant].push(run);
      args.log(
        `otel  ${variant.padEnd(8)}  n=${n}  ${run.seconds.toFixed(2).padStart(6)} s  ${Math.round(run.tasksPerSecond).toLocaleString('en-US').padStart(8)} tasks/s  spans=${otel?.exporter.spans ?? 0}`,
      );
    }
  }
  const median = (xs: HelloRun[]) => {
    const sorted = xs.map((x) => x.tasksPerSecond).sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const spread = (xs: HelloRun[]) => {
    const v = xs.map((x) => x.tasksPerSecond);
    return round((Math.max(...v) - Math.min(...v)) / median(xs));
  };
  const noSdk = median(runs.noSdk);
  const sampled = median(runs.sampled);
  const alwaysOn = median(runs.alwaysOn);
  const result = {
    scenario: 'otel',
    n,
    rounds,
    noSdkTasksPerSecond: round(noSdk),
    sampledTasksPerSecond: round(sampled),
    alwaysOnTasksPerSecond: round(alwaysOn),
    sampledToNoSdk: round(sampled / noSdk),
    alwaysOnToNoSdk: round(alwaysOn / noSdk),
    spread: {
      noSdk: spread(runs.noSdk),
      sampled: spread(runs.sampled),
      alwaysOn: spread(runs.alwaysOn),
    },
    spansExported: exported,
    node: process.version,
  };
  args.log(
    `medians of ${rounds}: no SDK ${Math.round(noSdk)} / 1% sampled ${Math.round(sampled)} (${result.sampledToNoSdk}x) / always on ${Math.round(alwaysOn)} (${result.alwaysOnToNoSdk}x) tasks/s`,
  );
  return result;
}
