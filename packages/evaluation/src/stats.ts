import { EvaluationError, EvaluationErrorCode } from './errors.js';
import { checkQuantile, quantileOfSorted, sortedSample } from './quantile.js';

/**
 * Distribution of a sample. When the sample is empty `n` is 0 and every statistic is null,
 * so an empty side serialises as "no data" rather than as a misleading 0.
 */
export interface Summary {
  n: number;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/**
 * The `q` quantile of `values` by linear interpolation between closest ranks: numpy's default,
 * Hyndman–Fan type 7 (DESIGN §4). With `h = (n − 1)·q`, the result is
 * `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])` over the sorted values.
 *
 * @param values - the sample, in any order; it is not modified.
 * @param q - a fraction in [0, 1] (0.99 for p99, not 99).
 * @throws {@link EvaluationError} `EVAL_INVALID_QUANTILE` when q is outside [0, 1];
 *   `EVAL_INVALID_SAMPLE` when `values` is empty or holds a non-finite number.
 */
export function percentile(values: readonly number[], q: number): number {
  checkQuantile(q);
  const sorted = sortedSample(values);
  if (sorted.length === 0) {
    throw new EvaluationError(EvaluationErrorCode.invalidSample, 'percentile of an empty sample is undefined');
  }
  return quantileOfSorted(sorted, q);
}

/** Count, mean, p50/p90/p95/p99 (type 7) and max of `values`; see {@link Summary} for the empty case. */
export function summarize(values: readonly number[]): Summary {
  const sorted = sortedSample(values);
  const n = sorted.length;
  if (n === 0) return { n: 0, mean: null, p50: null, p90: null, p95: null, p99: null, max: null };
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    n,
    mean: sum / n,
    p50: quantileOfSorted(sorted, 0.5),
    p90: quantileOfSorted(sorted, 0.9),
    p95: quantileOfSorted(sorted, 0.95),
    p99: quantileOfSorted(sorted, 0.99),
    max: sorted[n - 1]!,
  };
}

/** Arithmetic mean, or null for an empty sample. */
export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}
