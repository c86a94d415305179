/**
 * Durations written the way operators write them: `'7d'`, `'12h'`, `'30m'`, `'45s'`, `'500ms'`,
 * `'2w'`, or a number of milliseconds.
 * @module
 */
import { ValidationError } from '../errors.js';

/** The units of a {@link Duration}: milliseconds, seconds, minutes, hours, days, weeks. */
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w';

const UNIT_MS: Record<DurationUnit, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** A duration: milliseconds, or a string of digits and a unit (`ms`, `s`, `m`, `h`, `d`, `w`). */
export type Duration = number | `${number}${DurationUnit}`;

/**
 * Milliseconds of a {@link Duration}.
 * @throws ValidationError naming `field` when the value is not a non-negative duration.
 */
export function parseDuration(value: Duration | string, field: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else if (typeof value === 'string') {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(value.trim());
    const ms = match ? Number(match[1]) * UNIT_MS[match[2] as DurationUnit] : Number.NaN;
    if (Number.isFinite(ms)) return ms;
  }
  const message = `expected a number of milliseconds ≥ 0 or a duration such as '7d', '12h', '30m' (got ${JSON.stringify(value) ?? String(value)})`;
  throw new ValidationError(`${field}: ${message}`, [{ path: field, message }]);
}
