/**
 * OpenTelemetry SDK in memory for tests: a tracer provider exporting to an InMemorySpanExporter
 * and a meter provider read on demand, passed to a Switchyard through its `telemetry` option.
 */
import { type Attributes, type HrTime, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

export interface OtelHarness {
  tracerProvider: BasicTracerProvider;
  meterProvider: MeterProvider;
  spans(): ReadableSpan[];
  /** Sums of every counter data point by metric name and attributes (histograms: counts). */
  metrics(): Promise<MetricPoint[]>;
  shutdown(): Promise<void>;
}

export interface MetricPoint {
  name: string;
  attributes: Attributes;
  value: number;
  /** Histograms: the sum of the recorded values. */
  sum?: number;
}

export function otelHarness(): OtelHarness {
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spanExporter)],
  });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 60_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    tracerProvider,
    meterProvider,
    spans: () => spanExporter.getFinishedSpans(),
    async metrics() {
      metricExporter.reset();
      await reader.forceFlush();
      const points: MetricPoint[] = [];
      for (const resource of metricExporter.getMetrics())
        for (const scope of resource.scopeMetrics)
          for (const metric of scope.metrics)
            for (const point of metric.dataPoints as { attributes: Attributes; value: unknown }[])
              points.push(
                typeof point.value === 'number'
                  ? {
                      name: metric.descriptor.name,
                      attributes: point.attributes,
                      value: point.value,
                    }
                  : {
                      name: metric.descriptor.name,
                      attributes: point.attributes,
                      value: (point.value as { count?: number }).count ?? 0,
                      sum: (point.value as { sum?: number }).sum ?? 0,
                    },
              );
      return points;
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** Total of a metric's points whose attributes include `where`. */
export function total(points: MetricPoint[], name: string, where: Attributes = {}): number {
  return points
    .filter(
      (p) => p.name === name && Object.entries(where).every(([k, v]) => p.attributes[k] === v),
    )
    .reduce((sum, p) => sum + p.value, 0);
}

/** The span's parent span id ('' for a root). */
export function parentOf(span: ReadableSpan): string {
  return span.parentSpanContext?.spanId ?? '';
}

/** Milliseconds of an HrTime, for ordering spans. */
export function millis(t: HrTime): number {
  return t[0] * 1000 + t[1] / 1e6;
}

/** A root context, for a test to start an application span outside any other. */
export const root = ROOT_CONTEXT;
export { trace };
