import { EvaluationError, EvaluationErrorCode } from './errors.js';

/**
 * Type-7 quantile of an already sorted, non-empty, finite sample (DESIGN §4). Internal: callers
 * in hot loops (the bootstrap) have checked their input once; the public, checked entry point is
 * `percentile` in `stats.ts`.
 */
export function quantileOfSorted(sorted: ArrayLike<number>, q: number): number {
  const h = (sorted.length - 1) * q;
  const low = Math.floor(h);
  const lower = sorted[low]!;
  const upper = sorted[Math.min(low + 1, sorted.length - 1)]!;
  const t = h - low;
  // numpy's _lerp: interpolate from the nearer rank so q = 1 returns the maximum exactly.
  return t >= 0.5 ? upper - (upper - lower) * (1 - t) : lower + (upper - lower) * t;
}

/** The sample as a numerically sorted copy. @throws `EVAL_INVALID_SAMPLE` on a non-finite value. */
export function sortedSample(values: readonly number[]): Float64Array {
  for (const value of values) {
    if (!Number.isFinite(value)) {
      throw new EvaluationError(EvaluationErrorCode.invalidSample, `sample values must be finite numbers (got ${String(value)})`);
    }
  }
  // A typed array sorts numerically, unlike Array.prototype.sort's default.
  return Float64Array.from(values).sort();
}

/** @throws `EVAL_INVALID_QUANTILE` unless q is a fraction in [0, 1]. */
export function checkQuantile(q: number): void {
  if (!(q >= 0 && q <= 1)) {
    throw new EvaluationError(
      EvaluationErrorCode.invalidQuantile,
      `quantile must be a fraction in [0, 1] (got ${String(q)}); pass 0.99 for p99`,
    );
  }
}
