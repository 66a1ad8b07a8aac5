// Order statistics for benchmark figures.

/** The median of the values (the mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The q-quantile (0..1, nearest rank) of values already sorted ascending; NaN for none. */
export function quantileOfSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** p50 and p99 of the first `count` entries of `samples` (sorted in place). */
export function latencySummary(samples: Float64Array, count: number): { p50: number; p99: number } {
  const sorted = samples.subarray(0, count).sort();
  return { p50: quantileOfSorted(sorted, 0.5), p99: quantileOfSorted(sorted, 0.99) };
}

/** The median of each numeric field across runs. */
export function medianOf<T extends object>(runs: readonly T[], pick: (run: T) => number): number {
  return median(runs.map(pick).filter((value) => Number.isFinite(value)));
}
