/** Entry point of the container: `node --conditions=@switchyard/source --import tsx src/main.ts`. */
import { isSwitchyardError } from '@switchyard/core';
import { startTelemetry } from '@switchyard/example-telemetry';
import { type ContainerHost, log, start } from './server.js';

async function main(): Promise<void> {
  // Before the Switchyard exists: its metric instruments bind to the provider registered now.
  const telemetry = await startTelemetry();
  log('info', 'telemetry', { exporter: telemetry.exporter });
  let host: ContainerHost;
  try {
    host = await start();
  } catch (err) {
    if (isSwitchyardError(err) && err.code === 'CONFIG_ERROR') {
      log('error', err.message, { issues: err.issues });
      process.exitCode = 3;
      return;
    }
    log('error', 'failed to start', { error: err instanceof Error ? err.message : String(err) });
    process.exitCode = isSwitchyardError(err) && err.code === 'BACKEND_ERROR' ? 4 : 1;
    return;
  }
  const onSignal = (signal: NodeJS.Signals) => {
    host
      .shutdown(signal)
      // Flush the last spans and metrics after the drain, whatever it reports.
      .then((ok) =>
        telemetry.shutdown().then(
          () => ok,
          () => ok,
        ),
      )
      .then((ok) => {
        // Exit explicitly: a stray timer in a dependency must not keep a drained container alive.
        process.exit(ok ? 0 : 1);
      });
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

await main();
