import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import {
  P99_INTERVAL_MIN_SAMPLES,
  createRandom,
  newcombeDiffInterval,
  pairedBootstrapBothSides,
  pairedBootstrapIntervals,
  quantileInterval,
  quantileStatistic,
  wilsonInterval,
  winRateInterval,
  type Interval,
  type RandomSource,
} from '../src/index.js';

/*
 * Coverage by simulation (issue 6): does every 95% interval the report prints contain the truth
 * about 95% of the time? Each check runs 1,000 simulated experiments with a known truth; with
 * 1,000 experiments the Monte Carlo standard error of a 95% coverage is 0.7 percentage points,
 * so the accepted band 93–97% is about ±3 standard errors. Everything is seeded, so each run
 * reproduces the same figures; where the coverage can be computed exactly (binomial and
 * trinomial counts) it is checked too.
 *
 * Latency model, per request: stable S ~ lognormal(ln 800 ms, 0.5); candidate C = 1.1 · S · e^{0.5·Z},
 * Z ~ N(0, 1) independent: 10% slower, and the same prompt is slow on both sides (log-latency
 * correlation 0.71) without the sides being proportional. The truths: candidate p99 / stable p99 =
 * 1.1 · exp(z₀.₉₉ (√(0.5² + 0.5²) − 0.5)), and the quantiles of the per-request delta S (1.1 e^{0.5 Z} − 1)
 * by numerical integration.
 *
 * Cost, about 15 s on one core: the bootstraps run the report's 2,000 resamples (1,000 × 2,000 ×
 * 200 pairs for the median, × 400 pairs for the p99 ratio); the order-statistic intervals and
 * the score intervals cost nothing in comparison.
 */

const EXPERIMENTS = 1_000;
const MODEL = { mu: Math.log(800), sigma: 0.5, slowdown: 1.1, jitter: 0.5 };
const Z_99 = 2.3263478740408408;

function contains(interval: Interval | null, truth: number): boolean {
  return interval !== null && interval.low <= truth && truth <= interval.high;
}

function assertBand(t: TestContext, what: string, covered: number, experiments = EXPERIMENTS): void {
  t.diagnostic(`${what}: covered ${covered} of ${experiments} (${((100 * covered) / experiments).toFixed(1)}%)`);
  assert.ok(covered >= 0.93 * experiments && covered <= 0.97 * experiments, `${what}: covered ${covered} of ${experiments}`);
}

/** Standard normal draw (Box–Muller; the second variate is discarded for simplicity). */
function normal(random: RandomSource): number {
  const u = 1 - random.next(); // in (0, 1], so the log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}

/** Φ, the standard normal CDF, from erfc (Numerical Recipes' erfcc, |error| < 1.2e-7). */
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

function simulatePairs(random: RandomSource, n: number): { stable: number[]; candidate: number[]; deltas: number[] } {
  const stable: number[] = [];
  const candidate: number[] = [];
  const deltas: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = Math.exp(MODEL.mu + MODEL.sigma * normal(random));
    const c = MODEL.slowdown * s * Math.exp(MODEL.jitter * normal(random));
    stable.push(s);
    candidate.push(c);
    deltas.push(c - s);
  }
  return { stable, candidate, deltas };
}

/**
 * P(S (k e^{τZ} − 1) ≤ x), integrating over Z (trapezoid rule over ±9 standard deviations): for
 * a given Z the factor f = k e^{τZ} − 1 has a sign, and S ≤ x / f (f > 0) or S ≥ x / f (f < 0).
 */
function deltaCdf(x: number): number {
  const steps = 4_000;
  const width = 18 / steps;
  let total = 0;
  for (let k = 0; k <= steps; k++) {
    const z = -9 + k * width;
    const factor = MODEL.slowdown * Math.exp(MODEL.jitter * z) - 1;
    const logNormalCdf = (value: number) => normalCdf((Math.log(value) - MODEL.mu) / MODEL.sigma);
    let p: number;
    if (factor > 0) p = x <= 0 ? 0 : logNormalCdf(x / factor);
    else if (factor < 0) p = x >= 0 ? 1 : 1 - logNormalCdf(x / factor);
    else p = x >= 0 ? 1 : 0;
    total += (k === 0 || k === steps ? 0.5 : 1) * p * Math.exp((-z * z) / 2);
  }
  return (total * width) / Math.sqrt(2 * Math.PI);
}

/** The q quantile of the per-request delta, by bisection on its CDF. */
function trueDeltaQuantile(q: number): number {
  let low = -100_000;
  let high = 1_000_000;
  for (let i = 0; i < 80; i++) {
    const mid = (low + high) / 2;
    if (deltaCdf(mid) < q) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

const TRUE_P99_RATIO = MODEL.slowdown * Math.exp(Z_99 * (Math.hypot(MODEL.sigma, MODEL.jitter) - MODEL.sigma));

describe('coverage of the 95% intervals by simulation', () => {
  it('the latency truths of the model agree with one very large sample', () => {
    const big = simulatePairs(createRandom(99), 400_000);
    const deltas = big.deltas.sort((a, b) => a - b);
    const median = trueDeltaQuantile(0.5);
    const p99 = trueDeltaQuantile(0.99);
    assert.ok(Math.abs(deltas[200_000]! - median) < 2, `numerical median ${median} vs large-sample ${deltas[200_000]}`);
    assert.ok(Math.abs(deltas[396_000]! - p99) / p99 < 0.01, `numerical p99 ${p99} vs large-sample ${deltas[396_000]}`);
    const p99Of = (values: number[]) => values.sort((a, b) => a - b)[396_000]!;
    const ratio = p99Of(big.candidate) / p99Of(big.stable);
    assert.ok(Math.abs(ratio - TRUE_P99_RATIO) / TRUE_P99_RATIO < 0.02, `p99 ratio ${TRUE_P99_RATIO} vs large-sample ${ratio}`);
  });

  it('the Wilson interval of a rate without ties contains the true rate in 93–97% of 1,000 Bernoulli experiments', (t) => {
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
    assertBand(t, `Wilson, p = ${truth}, n = ${n} (exact coverage ${exact.toFixed(4)})`, covered);
    assert.ok(exact >= 0.93 && exact <= 0.97, `exact coverage ${exact}`);
  });

  for (const { wins, ties, n } of [
    { wins: 0.5, ties: 0.3, n: 200 },
    // A candidate that mostly answers like stable: most pairs are (auto-)tied.
    { wins: 0.15, ties: 0.8, n: 200 },
  ]) {
    const truth = wins + ties / 2;
    it(`the judge's win rate interval (ties count half) contains the true ${truth} in 93–97% of 1,000 experiments with ${ties * 100}% ties`, (t) => {
      const random = createRandom(Math.round(ties * 1000));
      let covered = 0;
      let wilsonCovered = 0;
      for (let experiment = 0; experiment < EXPERIMENTS; experiment++) {
        let w = 0;
        let tied = 0;
        for (let i = 0; i < n; i++) {
          const u = random.next();
          if (u < wins) w++;
          else if (u < wins + ties) tied++;
        }
        if (contains(winRateInterval(w, tied, n), truth)) covered++;
        if (contains(wilsonInterval(w + tied / 2, n), truth)) wilsonCovered++;
      }
      // Exact coverage: the trinomial probability of every (wins, ties) whose interval covers.
      let exact = 0;
      const logFactorial = [0];
      for (let k = 1; k <= n; k++) logFactorial.push(logFactorial[k - 1]! + Math.log(k));
      const losses = 1 - wins - ties;
      for (let w = 0; w <= n; w++) {
        for (let tied = 0; w + tied <= n; tied++) {
          const l = n - w - tied;
          const logP = logFactorial[n]! - logFactorial[w]! - logFactorial[tied]! - logFactorial[l]! + w * Math.log(wins) + tied * Math.log(ties) + l * Math.log(losses);
          if (contains(winRateInterval(w, tied, n), truth)) exact += Math.exp(logP);
        }
      }
      t.diagnostic(`Wilson of (wins + ties / 2) / n would cover ${wilsonCovered} of ${EXPERIMENTS}`);
      assertBand(t, `win rate ${truth}, ${ties * 100}% ties, n = ${n} (exact coverage ${exact.toFixed(4)})`, covered);
      assert.ok(exact >= 0.93 && exact <= 0.97, `exact coverage ${exact}`);
    });
  }

  it("Newcombe's interval of an error-rate increase contains the true increase in 93–97% of 1,000 experiments", (t) => {
    const n = 1_000;
    const [candidateRate, stableRate] = [0.03, 0.01];
    const random = createRandom(31);
    const failures = (rate: number) => {
      let count = 0;
      for (let i = 0; i < n; i++) if (random.next() < rate) count++;
      return count;
    };
    let covered = 0;
    for (let experiment = 0; experiment < EXPERIMENTS; experiment++) {
      const interval = newcombeDiffInterval({ successes: failures(candidateRate), n }, { successes: failures(stableRate), n });
      if (contains(interval, candidateRate - stableRate)) covered++;
    }
    assertBand(t, `Newcombe, ${candidateRate} − ${stableRate}, n = ${n} per side (sides independent, as the interval assumes)`, covered);
  });

  it('the paired bootstrap interval of the median latency delta contains the true median in 93–97% of 1,000 experiments', (t) => {
    const n = 200;
    const truth = trueDeltaQuantile(0.5);
    const random = createRandom(7);
    let covered = 0;
    for (let experiment = 0; experiment < EXPERIMENTS; experiment++) {
      const { deltas } = simulatePairs(random, n);
      if (contains(pairedBootstrapIntervals(deltas, [quantileStatistic(0.5)], { iterations: 2_000, seed: experiment })[0]!, truth)) covered++;
    }
    assertBand(t, `median delta ${truth.toFixed(1)} ms, n = ${n}, bootstrap of 2,000 resamples`, covered);
  });

  for (const n of [P99_INTERVAL_MIN_SAMPLES, 1_000, 3_000]) {
    it(`the order-statistic interval of the p99 latency delta contains the true p99 in 93–97% of 1,000 experiments of ${n} pairs`, (t) => {
      const truth = trueDeltaQuantile(0.99);
      const random = createRandom(n);
      let covered = 0;
      for (let experiment = 0; experiment < EXPERIMENTS; experiment++) {
        if (contains(quantileInterval(simulatePairs(random, n).deltas, 0.99), truth)) covered++;
      }
      assertBand(t, `p99 delta ${truth.toFixed(0)} ms, n = ${n}`, covered);
    });
  }

  it('withholds the p99 interval below 368 pairs, where a percentile bootstrap of a p99 covers far less than 95%', (t) => {
    const n = 200;
    const truth = trueDeltaQuantile(0.99);
    const random = createRandom(11);
    let bootstrapCovered = 0;
    for (let experiment = 0; experiment < 200; experiment++) {
      const { deltas } = simulatePairs(random, n);
      assert.equal(quantileInterval(deltas, 0.99), null);
      if (contains(pairedBootstrapIntervals(deltas, [quantileStatistic(0.99)], { iterations: 1_000, seed: experiment })[0]!, truth)) bootstrapCovered++;
    }
    t.diagnostic(`a percentile bootstrap of the p99 delta at n = ${n} covered ${bootstrapCovered} of 200`);
    assert.ok(bootstrapCovered < 0.9 * 200, `the bootstrap covered ${bootstrapCovered} of 200`);
  });

  it(`the paired bootstrap interval of the p99 ratio contains the true ratio in 93–97% of 1,000 experiments of 400 pairs`, (t) => {
    const n = 400;
    const random = createRandom(400);
    let covered = 0;
    for (let experiment = 0; experiment < EXPERIMENTS; experiment++) {
      const { stable, candidate } = simulatePairs(random, n);
      const ratio = pairedBootstrapBothSides(stable, candidate, (s, c) => c.quantile(0.99) / s.quantile(0.99), { iterations: 2_000, seed: experiment });
      if (contains(ratio, TRUE_P99_RATIO)) covered++;
    }
    assertBand(t, `p99 ratio ${TRUE_P99_RATIO.toFixed(3)}, n = ${n}, bootstrap of 2,000 resamples`, covered);
  });
});
