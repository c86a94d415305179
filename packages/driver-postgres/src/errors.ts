import {
  isSwitchyardError,
  SerializationError,
  SwitchyardError,
  ValidationError,
} from '@switchyard/core';
import { redactSecrets } from '@switchyard/core/driver';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Validates a schema name and returns it quoted, once, for interpolation into SQL text.
 * @throws ValidationError naming `field` when the name is not a plain lower-case identifier.
 */
export function quoteSchema(name: string, field = 'schema'): string {
  if (typeof name !== 'string' || !SCHEMA_NAME.test(name)) {
    throw new ValidationError(`[switchyard] [postgres] invalid ${field} name`, [
      { path: field, message: `must match ${SCHEMA_NAME.source}` },
    ]);
  }
  // The pattern admits no quote, so quoting cannot be escaped out of.
  return `"${name}"`;
}

/**
 * JSON text of a value for a `json` column; `undefined` becomes SQL NULL.
 * @throws SerializationError for BigInt, cycles and other values JSON cannot represent.
 */
export function jsonText(value: unknown, path: string): string | null {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new SerializationError(`[switchyard] [postgres] ${path} is not JSON-serialisable`, {
      cause,
      path,
    });
  }
  if (text === undefined) {
    throw new SerializationError(`[switchyard] [postgres] ${path} is not JSON-serialisable`, {
      path,
    });
  }
  return text;
}

/**
 * A column of JSON values as one JSON array (`undefined` → `null`), for `json_array_elements`:
 * one native stringify for the batch instead of one per value, and no second escaping of each
 * value inside an array literal. A value JSON cannot hold gets the same error as {@link jsonText},
 * naming its field (`path(index)`).
 */
export function jsonArray(values: readonly unknown[], path: (index: number) => string): string {
  for (let i = 0; i < values.length; i++) {
    const type = typeof values[i];
    // Inside an array JSON.stringify writes these as null instead of failing.
    if (type === 'function' || type === 'symbol') jsonText(values[i], path(i));
  }
  try {
    return JSON.stringify(values);
  } catch (cause) {
    for (let i = 0; i < values.length; i++) jsonText(values[i], path(i));
    throw new SerializationError('[switchyard] [postgres] a value is not JSON-serialisable', {
      cause,
    });
  }
}

/** SQLSTATEs of a failed password / authorisation check. */
export function isAuthError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '28P01' || code === '28000';
}

/**
 * SQLSTATEs of a value PostgreSQL cannot hold in text: `22021` (a byte sequence invalid in the
 * encoding, e.g. 0x00 in a text parameter) and `22P05` (`\u0000` converted to text). The input is
 * at fault, not the database.
 */
const UNSTORABLE_TEXT = new Set(['22021', '22P05']);

/**
 * SQLSTATEs of a value out of the range its column or parameter holds: `22003` (a number), `22008`
 * (a date or time) and `22009` (a time zone offset). Callers check the ranges where values come
 * in, naming the field; one that still reaches the database is bad input all the same.
 */
const OUT_OF_RANGE = new Set(['22003', '22008', '22009']);

/**
 * Wraps anything the database threw into a `BACKEND_ERROR` (or `AUTH_FAILED`), keeping the SQLSTATE
 * and the cause but never the connection string. Text the database cannot store (a U+0000 in an
 * id, a key or a value) or a value out of its range is bad input: an `INVALID_INPUT`
 * {@link ValidationError}, never a backend error.
 */
export function backendError(err: unknown, operation: string): SwitchyardError {
  if (isSwitchyardError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNSTORABLE_TEXT.has(code))
    return new ValidationError(
      `${operation}: a value contains text PostgreSQL cannot store (the character U+0000)`,
      [{ path: '', message: 'must not contain the character U+0000' }],
      { cause: err },
    );
  if (typeof code === 'string' && OUT_OF_RANGE.has(code))
    return new ValidationError(
      `${operation}: a value is out of the range PostgreSQL stores`,
      [{ path: '', message: 'out of range' }],
      { cause: err },
    );
  // Every secret value resolved in this process (connection strings, passwords) is redacted.
  const message = redactSecrets(err instanceof Error ? err.message : String(err));
  const detail = typeof code === 'string' ? `${code} ${message}` : message;
  return new SwitchyardError(
    isAuthError(err) ? 'AUTH_FAILED' : 'BACKEND_ERROR',
    `[switchyard] [postgres] ${operation} failed: ${detail}`,
    {
      cause: err,
    },
  );
}
