/**
 * A holder that keeps a secret out of logs: printing, JSON-encoding or string-concatenating it
 * yields `[secret]`; only {@link SecretValue.reveal} returns the value.
 */
export class SecretValue {
  // A true private field: not enumerable, not visible to util.inspect, structuredClone or JSON.
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself. Call it at the last moment, where the value is handed to a client. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[secret]';
  }

  toJSON(): string {
    return '[secret]';
  }

  // `Symbol.for` instead of importing node:util keeps core free of Node-only imports.
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[secret]';
  }

  [Symbol.toPrimitive](): string {
    return '[secret]';
  }
}
