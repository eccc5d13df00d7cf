import { EvaluationError, EvaluationErrorCode } from './errors.js';
import { checkQuantile, sortedSample } from './quantile.js';
import type { Estimate, Interval } from './report-schema.js';
import { percentile } from './stats.js';

/**
 * Distribution-free confidence interval of the `q` quantile of a sample by fractional order
 * statistics (Hutson 1999, "Calculating nonparametric confidence intervals for quantiles using
 * fractional order statistics", J. Applied Statistics 26:343–353).
 *
 * The k-th order statistic of n draws lies below the true quantile ξ_q with probability
 * P(U₍ₖ₎ ≤ q) = I_q(k, n + 1 − k), U₍ₖ₎ ~ Beta(k, n + 1 − k), for any continuous distribution.
 * Hutson lets k be real: the lower end is the order statistic of rank l with
 * I_q(l, n + 1 − l) = 1 − α/2, the upper end the one of rank u with I_q(u, n + 1 − u) = α/2, each
 * read between the two neighbouring order statistics, x₍⌊k⌋₎ + (k − ⌊k⌋)(x₍⌊k⌋+1₎ − x₍⌊k⌋₎). Integer
 * ranks alone would cover 95–98.5% of the time for a p99, depending on n; the fractional ranks
 * bring it to 94–96% (measured, `test/coverage.test.ts`).
 *
 * Unlike a percentile bootstrap, whose resampled p99 can never exceed the sample maximum (about
 * 65% coverage for a p99 with 100 values, 80% with 300), this interval does not exist at all when
 * the sample is too small to bracket the quantile: see {@link quantileIntervalMinSamples}.
 *
 * @param values - the sample, any order, finite numbers.
 * @param q - the quantile, in (0, 1): 0.99 for the p99.
 * @param confidence - @defaultValue 0.95
 * @returns the interval, or null when `values` has fewer than
 *   `quantileIntervalMinSamples(q, confidence)` values.
 * @throws {@link EvaluationError} `EVAL_INVALID_QUANTILE` for q outside (0, 1),
 *   `EVAL_INVALID_SAMPLE` for a non-finite value, `EVAL_INVALID_OPTIONS` for a bad confidence.
 */
export function quantileInterval(values: readonly number[], q: number, confidence = 0.95): Interval | null {
  checkOpenQuantile(q);
  checkConfidence(confidence);
  const sorted = sortedSample(values);
  const n = sorted.length;
  if (n < quantileIntervalMinSamples(q, confidence)) return null;
  const tail = (1 - confidence) / 2;
  return { low: fractionalOrderStatistic(sorted, rankWithProbabilityBelow(n, q, 1 - tail)), high: fractionalOrderStatistic(sorted, rankWithProbabilityBelow(n, q, tail)) };
}

/**
 * The fewest values for which {@link quantileInterval} exists: the smallest n where the sample
 * maximum lies above ξ_q with probability at least 1 − α/2 (qⁿ ≤ α/2) and the minimum below it
 * ((1 − q)ⁿ ≤ α/2). Below it, the true quantile is beyond every observed value too often for any
 * interval made of observed values to reach its coverage. 368 for a 95% interval of a p99, 72 for
 * a p95, 6 for a median.
 */
export function quantileIntervalMinSamples(q: number, confidence = 0.95): number {
  checkOpenQuantile(q);
  checkConfidence(confidence);
  const tail = (1 - confidence) / 2;
  const extreme = Math.max(q, 1 - q);
  let n = Math.max(1, Math.ceil(Math.log(tail) / Math.log(extreme)));
  // The logarithms may round either way at an exact power.
  while (n > 1 && extreme ** (n - 1) <= tail) n--;
  while (extreme ** n > tail) n++;
  return n;
}

/**
 * Pairs a report needs before it prints a 95% interval of a p99 (368): below it the report's p99
 * delta and p99 ratio intervals are null, with {@link TOO_FEW_FOR_P99_INTERVAL} as the reason,
 * and the p99 E2E gate is inconclusive.
 */
export const P99_INTERVAL_MIN_SAMPLES = quantileIntervalMinSamples(0.99);

/** Why a p99 interval is null although the p99 is known. */
export const TOO_FEW_FOR_P99_INTERVAL = `too few samples above p99 for an interval (a 95% interval of a p99 needs at least ${P99_INTERVAL_MIN_SAMPLES} pairs)`;

/** The p99 of `values` with its {@link quantileInterval}, or with a note saying why it has none. */
export function p99Estimate(values: readonly number[]): Estimate {
  if (values.length === 0) return { value: null, ci95: null };
  const value = percentile(values, 0.99);
  const ci95 = quantileInterval(values, 0.99);
  return ci95 === null ? { value, ci95, note: TOO_FEW_FOR_P99_INTERVAL } : { value, ci95 };
}

/**
 * The real rank k in [1, n] with P(X₍ₖ₎ ≤ ξ_q) = I_q(k, n + 1 − k) = `probability`, by bisection
 * (the probability falls as k grows). The caller has checked that the rank exists.
 */
function rankWithProbabilityBelow(n: number, q: number, probability: number): number {
  let low = 1;
  let high = n;
  for (let i = 0; i < 64 && high - low > 1e-9; i++) {
    const mid = (low + high) / 2;
    if (regularizedIncompleteBeta(mid, n + 1 - mid, q) > probability) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

/** x₍ₖ₎ for a real rank k in [1, n] (1-based), interpolated linearly between neighbours. */
function fractionalOrderStatistic(sorted: Float64Array, rank: number): number {
  const whole = Math.floor(rank);
  const lower = sorted[whole - 1]!;
  if (whole >= sorted.length) return lower;
  return lower + (rank - whole) * (sorted[whole]! - lower);
}

/**
 * The regularized incomplete beta function I_x(a, b) = P(Beta(a, b) ≤ x), by the continued
 * fraction of Numerical Recipes (`betai`/`betacf`, modified Lentz), using the symmetry
 * I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges faster. Relative error below 1e-10
 * for a, b up to 10⁵ (the log-gamma terms limit it), far below what a rank needs.
 *
 * @throws {@link EvaluationError} `EVAL_INVALID_INPUT` unless a, b > 0 and x in [0, 1].
 */
export function regularizedIncompleteBeta(a: number, b: number, x: number): number {
  if (!(a > 0 && b > 0 && x >= 0 && x <= 1)) {
    throw new EvaluationError(EvaluationErrorCode.invalidInput, `incomplete beta needs a > 0, b > 0 and x in [0, 1] (got a = ${a}, b = ${b}, x = ${x})`);
  }
  if (x === 0) return 0;
  if (x === 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

const TINY = 1e-300;

function betaContinuedFraction(a: number, b: number, x: number): number {
  const clamp = (value: number) => (Math.abs(value) < TINY ? TINY : value);
  let c = 1;
  let d = 1 / clamp(1 - ((a + b) * x) / (a + 1));
  let h = d;
  for (let m = 1; m <= 100_000; m++) {
    const m2 = 2 * m;
    const even = (m * (b - m) * x) / ((a - 1 + m2) * (a + m2));
    d = 1 / clamp(1 + even * d);
    c = clamp(1 + even / c);
    h *= d * c;
    const odd = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + 1 + m2));
    d = 1 / clamp(1 + odd * d);
    c = clamp(1 + odd / c);
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < 1e-15) return h;
  }
  throw new EvaluationError(EvaluationErrorCode.invalidInput, `incomplete beta did not converge for a = ${a}, b = ${b}, x = ${x}`);
}

// Lanczos approximation, g = 7, n = 9 (the coefficients of Godfrey's table); relative error < 1e-15.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
  9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const shifted = x - 1;
  let sum = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i]! / (shifted + i);
  const t = shifted + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(sum);
}

function checkOpenQuantile(q: number): void {
  checkQuantile(q);
  if (q === 0 || q === 1) {
    throw new EvaluationError(EvaluationErrorCode.invalidQuantile, `an interval of the ${q} quantile (the sample's minimum or maximum) does not exist; q must be in (0, 1)`);
  }
}

function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) {
    throw new EvaluationError(EvaluationErrorCode.invalidOptions, `confidence must be a fraction in (0, 1), 0.95 for 95% (got ${String(confidence)})`);
  }
}
