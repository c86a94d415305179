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
