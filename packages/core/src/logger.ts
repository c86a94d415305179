/** Structured logger. Fields must never hold secrets. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const noop = () => {};

/** Discards everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Warnings and errors to stderr as one line each; debug and info dropped. The default. */
export const consoleLogger: Logger = {
  debug: noop,
  info: noop,
  warn: (message, fields) => console.warn(`[switchyard] ${message}`, fields ?? ''),
  error: (message, fields) => console.error(`[switchyard] ${message}`, fields ?? ''),
};
