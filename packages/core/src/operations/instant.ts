/**
 * Instants written the way operators write them: ISO 8601 dates and date-times, checked against
 * the calendar.
 * @module
 */

/**
 * ISO 8601: a date, or a date-time with optional seconds, fraction and offset. A date-time without
 * an offset is read as UTC, not as the server's local time, so the answer is the same on every host.
 */
const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * The instant an ISO 8601 text names (`2026-01-31`, `2026-01-31T12:00Z`, `…T12:00:00.5+01:00`), or
 * undefined when it is not one or names no real calendar moment (`2026-02-30`, `24:00`).
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
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}
