/**
 * The few statistics the report uses.
 *
 * @module
 */

/** Percentiles of a set of samples, in the samples' unit. */
export interface Summary {
  p50: number;
  p99: number;
  max: number;
  mean: number;
  /** How many samples the figures are over. */
  samples: number;
}

/**
 * The nearest-rank percentile (the smallest sample with at least `p` percent of the samples at or
 * below it): over 100 samples, p99 is the second largest.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** p50, p99, max and mean of `samples` (NaN for each when there are none). */
export function summarise(samples: readonly number[]): Summary {
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  let sum = 0;
  for (const value of list) sum += value;
  return {
    p50: percentile(list, 50),
    p99: percentile(list, 99),
    max: list.length === 0 ? Number.NaN : list[list.length - 1]!,
    mean: list.length === 0 ? Number.NaN : sum / list.length,
    samples: list.length,
  };
}

/** Splits `total` connections over as few processes as hold at most `perProcess` each, evenly. */
export function split(total: number, perProcess: number): number[] {
  const processes = Math.max(1, Math.ceil(total / perProcess));
  return Array.from({ length: processes }, (_, i) => Math.floor(total / processes) + (i < total % processes ? 1 : 0));
}
