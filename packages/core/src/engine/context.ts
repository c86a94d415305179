import { SwitchyardError } from '../errors.js';
import type { Logger } from '../logger.js';
import { CancelWatch } from '../operations/cancel-watch.js';
import type { Store } from '../store.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { DEFAULTS } from './defaults.js';
import { JobDirectory } from './job-directory.js';
import type { EngineSettings, TransportState } from './options.js';

/**
 * What the engine's modules share: the settings, the store, the jobs, the transports and the
 * cancel watch.
 */
export interface EngineContext {
  readonly settings: EngineSettings;
  readonly store: Store;
  readonly logger: Logger;
  readonly directory: JobDirectory;
  /** Spans and metrics (no-ops until the application registers an OpenTelemetry SDK). */
  readonly telemetry: Telemetry;
  /**
   * Aborts the signals of a cancelled job's running handlers, whichever loop runs them (`work()`
   * or `handle()`). `work()` subscribes it to the store's cancel notifications; the Switchyard's
   * `close()` closes it.
   */
  readonly cancels: CancelWatch;
  /**
   * Resolves once the store is initialised and each transport knows whether it claims the
   * store's task rows; every call after the first shares it (a failed one is tried again).
   */
  init(): Promise<void>;
  /**
   * The configured transport of that name.
   * @throws {SwitchyardError} `UNKNOWN_TRANSPORT` when this Switchyard does not configure it
   */
  transportOf(name: string): TransportState;
}

export function createContext(settings: EngineSettings, store: Store): EngineContext {
  let initialised: Promise<void> | undefined;
  const telemetry = new Telemetry(
    settings.telemetry,
    (name) => settings.transports.get(name)?.transport.name ?? name,
  );
  return {
    settings,
    store,
    logger: settings.logger,
    directory: new JobDirectory({
      store,
      definitions: settings.jobs,
      maxCached: DEFAULTS.jobCacheSize,
      telemetry,
    }),
    telemetry,
    cancels: new CancelWatch({
      store,
      intervalMs: settings.cancelCheckIntervalMs,
      logger: settings.logger,
    }),
    init: () => {
      if (!initialised) {
        initialised = initialise(settings, store);
        initialised.catch(() => {
          initialised = undefined;
        });
      }
      return initialised;
    },
    transportOf: (name) => {
      const state = settings.transports.get(name);
      if (!state)
        throw new SwitchyardError(
          'UNKNOWN_TRANSPORT',
          `job uses transport "${name}", which this worker does not configure`,
        );
      return state;
    },
  };
}

/**
 * Initialises the store, then marks each transport that claims the store's own task rows
 * (task-row claims): both name the same rows, so the engine offers tasks instead of sending them.
 */
async function initialise(settings: EngineSettings, store: Store): Promise<void> {
  await store.init?.();
  const rows = await store.taskRowsIdentity?.();
  await Promise.all(
    [...settings.transports.values()].map(async (state) => {
      state.rowClaims =
        rows !== undefined && (await state.transport.claimTaskRows?.(rows)) === true;
    }),
  );
}
