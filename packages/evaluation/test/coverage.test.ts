import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createRandom,
  pairedBootstrapIntervals,
  quantileStatistic,
  wilsonInterval,
  type Interval,
  type RandomSource,
} from '../src/index.js';

/*
 * Coverage by simulation: do the report's 95% intervals contain the truth about 95% of the time?
 * Everything is seeded, so each run reproduces the same figures. With 1,000 experiments the
 * Monte Carlo standard error of a 95% coverage is 0.7 percentage points, so the accepted band
 * 93–97% is about ±3 standard errors.
 *
 * Cost: the latency simulation runs 1,000 experiments × 2,000 resamples (the report's default)
 * × 200 pairs, about 4 s on one core. 200 pairs is a small experiment, where a bootstrap is
 * most likely to miss its coverage.
 */

const EXPERIMENTS = 1_000;

function contains(interval: Interval, truth: number): boolean {
  return interval.low <= truth && truth <= interval.high;
}

/** Standard normal draw (Box–Muller; the second variate is discarded for simplicity). */
function normal(random: RandomSource): number {
  const u = 1 - random.next(); // in (0, 1], so the log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}

/** Φ, the standard normal CDF, from erfc (W. J. Cody's rational approximations via Numerical Recipes' erfc, |error| < 1.2e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** The latency model: stable = lognormal, candidate = stable × 1.1 + normal noise, per request. */
const MODEL = { mu: Math.log(800), sigma: 0.5, slowdown: 1.1, noiseMs: 40 };

function simulatePairs(random: RandomSource, n: number): { stable: number[]; candidate: number[]; deltas: number[] } {
  const stable: number[] = [];
  const candidate: number[] = [];
  const deltas: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = Math.exp(MODEL.mu + MODEL.sigma * normal(random));
    const c = s * MODEL.slowdown + MODEL.noiseMs * normal(random);
    stable.push(s);
    candidate.push(c);
    deltas.push(c - s);
  }
  return { stable, candidate, deltas };
}

/**
 * P(a·S + ε ≤ x) for S lognormal(mu, sigma) and ε ~ N(0, noise²), by integrating over ε
 * (trapezoid rule over ±9 standard deviations): the convolution has no closed form.
 */
function scaledLognormalPlusNoiseCdf(x: number, a: number): number {
  const steps = 4_000;
  const width = 18 / steps;
  let total = 0;
  for (let k = 0; k <= steps; k++) {
    const e = -9 + k * width;
    const rest = (x - MODEL.noiseMs * e) / a;
    const cdf = rest <= 0 ? 0 : normalCdf((Math.log(rest) - MODEL.mu) / MODEL.sigma);
    const weight = k === 0 || k === steps ? 0.5 : 1;
    total += weight * cdf * Math.exp(-e * e / 2);
  }
  return (total * width) / Math.sqrt(2 * Math.PI);
}

/** The q quantile of a·S + ε, by bisection on its CDF. */
function trueQuantile(q: number, a: number): number {
  let low = -1_000;
  let high = 100_000;
  for (let i = 0; i < 80; i++) {
    const mid = (low + high) / 2;
    if (scaledLognormalPlusNoiseCdf(mid, a) < q) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

describe('coverage of the 95% intervals by simulation', () => {
  it('the Wilson interval of a win rate contains the true rate in 93–97% of 1,000 Bernoulli experiments', (t) => {
    const truth = 0.3;
    const n = 200;
    const random = createRandom(20_240_501);
    let covered = 0;
    for (let experiment = 0; experiment < EXPERIMENTS; experiment++) {
      let wins = 0;
      for (let i = 0; i < n; i++) if (random.next() < truth) wins++;
      if (contains(wilsonInterval(wins, n), truth)) covered++;
    }
    // The exact coverage at this (n, p), summing the binomial probabilities of the covering counts.
    let exact = 0;
    let logPmf = n * Math.log(1 - truth);
    for (let k = 0; k <= n; k++) {
      if (k > 0) logPmf += Math.log((n - k + 1) / k) + Math.log(truth / (1 - truth));
      if (contains(wilsonInterval(k, n), truth)) exact += Math.exp(logPmf);
    }
    t.diagnostic(`Wilson, p = ${truth}, n = ${n}: simulated coverage ${(covered / EXPERIMENTS).toFixed(3)}, exact ${exact.toFixed(4)}`);
    assert.ok(covered >= 930 && covered <= 970, `covered ${covered} of ${EXPERIMENTS}`);
    assert.ok(exact >= 0.93 && exact <= 0.97, `exact coverage ${exact}`);
  });

  it('the paired bootstrap interval of the median latency delta contains the true median in 93–97% of 1,000 experiments', (t) => {
    const n = 200;
    const iterations = 2_000;
    const trueMedian = trueQuantile(0.5, MODEL.slowdown - 1);
    const trueP99 = trueQuantile(0.99, MODEL.slowdown - 1);
    // A cross-check of the numerical truth against one very large sample.
    const big = simulatePairs(createRandom(99), 400_000).deltas.sort((a, b) => a - b);
    assert.ok(Math.abs(big[200_000]! - trueMedian) < 1, `numerical median ${trueMedian} vs large-sample ${big[200_000]}`);

    const random = createRandom(7);
    let medianCovered = 0;
    let p99Covered = 0;
    for (let experiment = 0; experiment < EXPERIMENTS; experiment++) {
      const { deltas } = simulatePairs(random, n);
      const [median, p99] = pairedBootstrapIntervals(deltas, [quantileStatistic(0.5), quantileStatistic(0.99)], { iterations, seed: experiment });
      if (contains(median!, trueMedian)) medianCovered++;
      if (contains(p99!, trueP99)) p99Covered++;
    }
    t.diagnostic(
      `bootstrap, n = ${n} pairs, ${iterations} resamples: median delta ${trueMedian.toFixed(2)} ms covered ${(medianCovered / EXPERIMENTS).toFixed(3)}; ` +
        `p99 delta ${trueP99.toFixed(1)} ms covered ${(p99Covered / EXPERIMENTS).toFixed(3)} (not asserted: percentile intervals of a tail quantile under-cover at this n)`,
    );
    assert.ok(medianCovered >= 930 && medianCovered <= 970, `covered ${medianCovered} of ${EXPERIMENTS}`);
  });
});
