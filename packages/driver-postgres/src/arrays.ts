/**
 * PostgreSQL array literals for the batch statements' parameters. pg's own serialiser quotes and
 * escapes every element (numbers included) and builds the literal by repeated concatenation: for
 * arrays of thousands of elements that was the largest source of a worker's garbage. This one
 * writes numbers and booleans bare, quotes only strings, and joins once.
 */

/** Elements this module writes itself; anything else leaves the array to pg. */
type Element = string | number | boolean | null | undefined;

function element(value: Element): string {
  if (value === null || value === undefined) return 'NULL';
  switch (typeof value) {
    case 'number':
      // Infinity/NaN are float8 spellings too; an int[] cast rejects them like any bad integer.
      return Number.isFinite(value)
        ? String(value)
        : Number.isNaN(value)
          ? 'NaN'
          : value > 0
            ? 'Infinity'
            : '-Infinity';
    case 'boolean':
      return value ? 't' : 'f';
    default:
      return value.includes('"') || value.includes('\\')
        ? `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
        : `"${value}"`;
  }
}

function isElement(value: unknown): value is Element {
  const type = typeof value;
  return (
    value === null ||
    value === undefined ||
    type === 'string' ||
    type === 'number' ||
    type === 'boolean'
  );
}

/**
 * The array literal for a one-dimensional array of strings, numbers, booleans and nulls, or
 * `undefined` when it holds anything else (nested arrays, Dates, Buffers: pg handles those).
 */
export function arrayLiteral(values: readonly unknown[]): string | undefined {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!isElement(value)) return undefined;
    parts[i] = element(value);
  }
  return `{${parts.join(',')}}`;
}
