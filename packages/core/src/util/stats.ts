/** Mean and 95th percentile (nearest rank) of a sample; nulls for an empty sample. */
export function meanAndP95(values: number[]): { mean: number | null; p95: number | null } {
  if (values.length === 0) return { mean: null, p95: null };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((sum, v) => sum + v, 0) / sorted.length;
  const p95 = sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
  return { mean, p95 };
}
