/**
 * OpenTelemetry for the example hosts (the container and the Function App), started before the
 * Switchyard is created (its metric instruments bind to the meter provider registered at that
 * moment):
 * - `APPLICATIONINSIGHTS_CONNECTION_STRING` set: Azure Monitor (Application Insights), traces and
 *   metrics, through `@azure/monitor-opentelemetry`;
 * - else `OTEL_EXPORTER_OTLP_ENDPOINT` set: OTLP over HTTP, traces and metrics, through the
 *   OpenTelemetry Node SDK (the standard `OTEL_*` variables apply: `OTEL_SERVICE_NAME`,
 *   `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `OTEL_EXPORTER_OTLP_HEADERS` …);
 * - neither: nothing is registered and Switchyard's instrumentation stays a no-op.
 * The SDKs are imported only when chosen: a host without either variable loads none of them.
 * @module
 */

/** What was started, and how to flush and stop it on shutdown. */
export interface StartedTelemetry {
  exporter: 'azure-monitor' | 'otlp' | 'none';
  shutdown(): Promise<void>;
}

export async function startTelemetry(
  env: Record<string, string | undefined> = process.env,
): Promise<StartedTelemetry> {
  if (env.APPLICATIONINSIGHTS_CONNECTION_STRING) {
    const { shutdownAzureMonitor, useAzureMonitor } = await import('@azure/monitor-opentelemetry');
    useAzureMonitor({
      azureMonitorExporterOptions: { connectionString: env.APPLICATIONINSIGHTS_CONNECTION_STRING },
    });
    return { exporter: 'azure-monitor', shutdown: () => shutdownAzureMonitor() };
  }
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    const [{ NodeSDK, metrics }, { OTLPTraceExporter }, { OTLPMetricExporter }] = await Promise.all(
      [
        import('@opentelemetry/sdk-node'),
        import('@opentelemetry/exporter-trace-otlp-http'),
        import('@opentelemetry/exporter-metrics-otlp-http'),
      ],
    );
    // The exporters read OTEL_EXPORTER_OTLP_ENDPOINT (adding /v1/traces and /v1/metrics).
    const sdk = new NodeSDK({
      traceExporter: new OTLPTraceExporter(),
      metricReader: new metrics.PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter(),
      }),
    });
    sdk.start();
    return { exporter: 'otlp', shutdown: () => sdk.shutdown() };
  }
  return { exporter: 'none', shutdown: () => Promise.resolve() };
}
