import { EvaluationError, EvaluationErrorCode } from './errors.js';
import type { Interval } from './report-schema.js';

/** The two-sided 95% normal quantile as the literature's tables round it. */
export const Z_95 = 1.96;

/** A binomial count: `successes` out of `n` trials. */
export interface BinomialCount {
  successes: number;
  n: number;
}

/**
 * Wilson score interval for a binomial proportion (Wilson 1927; Newcombe 1998a, method 3, no
 * continuity correction). Unlike the Wald interval it stays inside [0, 1] and keeps close to its
 * nominal coverage for small n and for rates near 0 or 1, which is where error rates live.
 *
 * `successes` may be fractional (a judge's win rate counts a tie as half a win); the bounds are
 * exactly 0 when `successes` is 0 and exactly 1 when it is `n`.
 *
 * @param z - the normal quantile; the default 1.96 gives a 95% interval.
 * @throws {@link EvaluationError} `EVAL_INVALID_SAMPLE` when n is not a positive integer or
 *   successes is outside [0, n]; `EVAL_INVALID_OPTIONS` when z is not a positive number.
 */
export function wilsonInterval(successes: number, n: number, z: number = Z_95): Interval {
  checkProportion({ successes, n });
  checkZ(z);
  const p = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return {
    low: successes === 0 ? 0 : Math.max(0, centre - half),
    high: successes === n ? 1 : Math.min(1, centre + half),
  };
}

/**
 * Interval for the difference of two independent proportions `a − b`, by Newcombe's hybrid
 * score method (Newcombe 1998b, method 10): with Wilson intervals (l₁, u₁) for p₁ and (l₂, u₂)
 * for p₂, and d = p₁ − p₂,
 * `[d − √((p₁ − l₁)² + (u₂ − p₂)²), d + √((u₁ − p₁)² + (p₂ − l₂)²)]`.
 *
 * @throws {@link EvaluationError} as {@link wilsonInterval}, for either proportion.
 */
export function newcombeDiffInterval(a: BinomialCount, b: BinomialCount, z: number = Z_95): Interval {
  const first = wilsonInterval(a.successes, a.n, z);
  const second = wilsonInterval(b.successes, b.n, z);
  const p1 = a.successes / a.n;
  const p2 = b.successes / b.n;
  const d = p1 - p2;
  return {
    low: Math.max(-1, d - Math.hypot(p1 - first.low, second.high - p2)),
    high: Math.min(1, d + Math.hypot(first.high - p1, p2 - second.low)),
  };
}

function checkProportion({ successes, n }: BinomialCount): void {
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new EvaluationError(EvaluationErrorCode.invalidSample, `a proportion needs a positive integer number of trials (got n = ${String(n)})`);
  }
  if (!Number.isFinite(successes) || successes < 0 || successes > n) {
    throw new EvaluationError(EvaluationErrorCode.invalidSample, `successes must be between 0 and n = ${n} (got ${String(successes)})`);
  }
}

function checkZ(z: number): void {
  if (!Number.isFinite(z) || z <= 0) {
    throw new EvaluationError(EvaluationErrorCode.invalidOptions, `z must be a positive number, 1.96 for a 95% interval (got ${String(z)})`);
  }
}
