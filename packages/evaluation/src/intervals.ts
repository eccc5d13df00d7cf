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
 * Score interval of a win rate with ties counted half: the mean of per-pair scores 1 (win),
 * ½ (tie) and 0 (loss), DESIGN §4's (wins + ties / 2) / n.
 *
 * Wilson's interval of (wins + ties / 2) out of n assumes each pair scores 0 or 1, with variance
 * p(1 − p). A score of ½ has less: with a tie rate τ the variance of one pair's score is exactly
 * p(1 − p) − τ / 4. Wilson therefore over-covers when there are ties (about 98% at a 30% tie rate,
 * over 99.9% at 80%, the case of a candidate that mostly answers like stable), which makes the judge
 * gate inconclusive far more often than it needs to be. This interval is Wilson's construction with
 * the right variance: the set of p with n (p̂ − p)² ≤ z² (p(1 − p) − τ(p) / 4), τ(p) the observed tie
 * share capped at the largest tie rate a mean of p allows (2 min(p, 1 − p)). It equals Wilson's
 * interval when there are no ties, stays inside [0, 1], and has a positive width even when every
 * pair is a tie (½ ± about z² / 2n). Coverage is checked by simulation in `test/coverage.test.ts`.
 *
 * @param z - the normal quantile; the default 1.96 gives a 95% interval.
 * @throws {@link EvaluationError} `EVAL_INVALID_SAMPLE` unless n is a positive integer and wins and
 *   ties are non-negative integers with wins + ties ≤ n; `EVAL_INVALID_OPTIONS` for a bad z.
 */
export function winRateInterval(wins: number, ties: number, n: number, z: number = Z_95): Interval {
  checkProportion({ successes: wins + ties, n });
  checkZ(z);
  if (!Number.isSafeInteger(wins) || !Number.isSafeInteger(ties) || wins < 0 || ties < 0) {
    throw new EvaluationError(EvaluationErrorCode.invalidSample, `wins and ties must be non-negative integers (got ${String(wins)} and ${String(ties)})`);
  }
  if (ties === 0) return wilsonInterval(wins, n, z);
  const losses = n - wins - ties;
  // The variance is symmetric in p ↔ 1 − p, so the upper end is one minus the lower end of the loss rate.
  return { low: tiedScoreLowerBound(wins, ties, n, z), high: 1 - tiedScoreLowerBound(losses, ties, n, z) };
}

/**
 * The lower end of {@link winRateInterval}: the smaller root of
 * n (p̂ − p)² = z² (p(1 − p) − min(τ, 2p) / 4), a quadratic on each side of p = τ / 2. Walking
 * down from p̂ (which is ≥ τ / 2): the root of the upper quadratic when it lies above τ / 2,
 * else (the acceptance region reaches τ / 2, e.g. when every pair is a tie) the lower one's.
 */
function tiedScoreLowerBound(wins: number, ties: number, n: number, z: number): number {
  const mean = (wins + ties / 2) / n;
  const tieShare = ties / n;
  const z2 = z * z;
  // Where p ≥ τ / 2: (n + z²) p² − (2n p̂ + z²) p + n p̂² + z² τ / 4 = 0.
  const upperPiece = smallerRoot(n + z2, -(2 * n * mean + z2), n * mean * mean + (z2 * tieShare) / 4);
  if (upperPiece > tieShare / 2 + 1e-12) return Math.min(mean, Math.max(0, upperPiece));
  // Where p < τ / 2 the variance is p / 2 − p²: (n + z²) p² − (2n p̂ + z² / 2) p + n p̂² = 0.
  return Math.min(mean, Math.max(0, smallerRoot(n + z2, -(2 * n * mean + z2 / 2), n * mean * mean)));
}

/** The smaller root of a p² + b p + c (a > 0), or the vertex when rounding makes the discriminant negative. */
function smallerRoot(a: number, b: number, c: number): number {
  const discriminant = b * b - 4 * a * c;
  return (-b - Math.sqrt(Math.max(0, discriminant))) / (2 * a);
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
