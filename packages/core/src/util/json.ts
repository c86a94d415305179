import { SerializationError } from '../errors.js';

/**
 * Checks that a value survives JSON unchanged in meaning and returns its canonical text (object
 * keys sorted), naming the first offending path otherwise.
 */
export function canonicalJson(value: unknown, field: string): string {
  return JSON.stringify(normalize(value, field, new Set()));
}

/** Deeper values are rejected: they would overflow the stack here, in drivers and in JSON.parse. */
export const MAX_JSON_DEPTH = 512;

function normalize(value: unknown, path: string, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value))
        throw new SerializationError(`${path} is ${value}, which JSON cannot represent`, { path });
      return value;
    case 'undefined':
      return undefined;
    case 'bigint':
      throw new SerializationError(`${path} is a BigInt, which JSON cannot represent`, { path });
    case 'function':
    case 'symbol':
      throw new SerializationError(`${path} is a ${typeof value}, which JSON cannot represent`, {
        path,
      });
  }
  if (value === null) return null;
  const obj = value as object;
  if (seen.has(obj))
    throw new SerializationError(`${path} contains a circular reference`, { path });
  if (value instanceof Date) return value.toJSON();
  if (seen.size >= MAX_JSON_DEPTH) {
    const root = path.split(/[.[]/)[0] ?? path;
    throw new SerializationError(`${root} is nested more than ${MAX_JSON_DEPTH} levels deep`, {
      path: root,
    });
  }
  seen.add(obj);
  try {
    if (Array.isArray(value))
      return value.map((v, i) => normalize(v, `${path}[${i}]`, seen) ?? null);
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const toJSON = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof toJSON === 'function') return normalize(toJSON.call(value), path, seen);
      if (value instanceof Map || value instanceof Set) {
        throw new SerializationError(
          `${path} is a ${value.constructor.name}, which JSON cannot represent`,
          { path },
        );
      }
    }
    const out: Record<string, unknown> = Object.create(null);
    for (const key of Object.keys(obj).sort()) {
      const v = normalize((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
      if (v !== undefined) out[key] = v;
    }
    return out;
  } finally {
    seen.delete(obj);
  }
}

/**
 * `value` as JSON will carry it: unchanged when it is plain JSON already (the common case, checked
 * without copying), otherwise normalised through {@link canonicalJson}. `field` names the value in
 * an error; on a per-task path pass a function of `arg`, so that the name is built only when an
 * error needs it.
 * @throws {SerializationError} when it cannot be carried as JSON
 */
export function asJson(value: unknown, field: string): unknown;
export function asJson<A>(value: unknown, field: (arg: A) => string, arg: A): unknown;
export function asJson<A>(value: unknown, field: string | ((arg: A) => string), arg?: A): unknown {
  if (isPlainJson(value, 0)) return value;
  const name = typeof field === 'string' ? field : field(arg as A);
  return JSON.parse(canonicalJson(value, name) ?? 'null');
}

/** True for values JSON round-trips unchanged; false sends the value through the full normaliser. */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth > 64) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isPlainJson(item, depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (
      !Object.hasOwn(value, key) ||
      !isPlainJson((value as Record<string, unknown>)[key], depth + 1)
    )
      return false;
  }
  return true;
}
