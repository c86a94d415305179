/**
 * Instants written the way operators write them: ISO 8601 dates and date-times, checked against
 * the calendar.
 * @module
 */
import { ValidationError } from '../errors.js';

/**
 * ISO 8601: a date, or a date-time with optional seconds, fraction and offset. A date-time without
 * an offset is read as UTC, not as the server's local time, so the answer is the same on every host.
 */
const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * The first and last instants Switchyard accepts and stores: the years 0001 to 9999, those ISO
 * 8601 writes with four digits. JavaScript's Dates and PostgreSQL's timestamps each reach further,
 * but not equally far (PostgreSQL has no year 0 and nothing past 294276), so an instant outside
 * this range is refused where it comes in, naming its field, instead of failing in a store.
 */
export const INSTANT_RANGE = Object.freeze(
  range('0001-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z'),
);

function range(first: string, last: string) {
  return { first, last, firstMs: Date.parse(first), lastMs: Date.parse(last) };
}

/** Whether `ms` (epoch milliseconds) is an instant Switchyard stores ({@link INSTANT_RANGE}). */
export function isStorableInstant(ms: number): boolean {
  return Number.isFinite(ms) && ms >= INSTANT_RANGE.firstMs && ms <= INSTANT_RANGE.lastMs;
}

/**
 * The instant an ISO 8601 text names (`2026-01-31`, `2026-01-31T12:00Z`, `…T12:00:00.5+01:00`), or
 * undefined when it is not one, names no real calendar moment (`2026-02-30`, `24:00`) or falls
 * outside {@link INSTANT_RANGE} (`0000-01-01`).
 */
export function parseInstant(value: string): Date | undefined {
  const m = ISO_DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', offset] = m;
  const daysInMonth = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
  const valid =
    Number(mo) >= 1 &&
    Number(mo) <= 12 &&
    Number(d) >= 1 &&
    Number(d) <= daysInMonth &&
    Number(h) <= 23 &&
    Number(mi) <= 59 &&
    Number(sec) <= 59;
  if (!valid) return undefined;
  const utc = m[4] !== undefined && offset === undefined ? `${value}Z` : value;
  const parsed = new Date(utc);
  return isStorableInstant(parsed.getTime()) ? parsed : undefined;
}

/**
 * Checks the instants a caller passed (a filter's bounds): each one given must be a valid Date
 * within {@link INSTANT_RANGE}.
 * @throws ValidationError naming every field that is not
 */
export function checkInstants(fields: Readonly<Record<string, unknown>>): void {
  const issues = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .filter(([, value]) => !(value instanceof Date) || !isStorableInstant(value.getTime()))
    .map(([path]) => ({
      path,
      message: `must be a valid date between ${INSTANT_RANGE.first} and ${INSTANT_RANGE.last}`,
    }));
  if (issues.length > 0)
    throw new ValidationError(issues.map((i) => `${i.path} ${i.message}`).join('; '), issues);
}
