/** Number, duration and date formatting shared by the pages. */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export const count = (n: number | null | undefined) => (n == null ? '—' : integer.format(n));
export const rate = (n: number | null | undefined) =>
  n == null ? '—' : n >= 100 ? integer.format(n) : decimal.format(n);

export function duration(ms: number | null | undefined): string {
  if (ms == null || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${decimal.format(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

export function time(value: string | undefined): string {
  if (!value) return '—';
  const date = new Date(value);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString('en-GB')
    : `${date.toLocaleDateString('en-CA')} ${date.toLocaleTimeString('en-GB')}`;
}

export function since(start: string | undefined, end?: string): number | undefined {
  if (!start) return undefined;
  return (end ? new Date(end).getTime() : Date.now()) - new Date(start).getTime();
}

export const percent = (part: number, total: number) =>
  total <= 0 ? 0 : Math.min(100, (part / total) * 100);
