import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EvaluationErrorCode,
  createRandom,
  meanStatistic,
  pairedBootstrap,
  pairedBootstrapBothSides,
  pairedBootstrapIntervals,
  percentile,
  quantileStatistic,
  type Interval,
  type ResamplePairStatistic,
} from '../src/index.js';

/** Skewed, latency-like deltas from a fixed seed. */
function sampleDeltas(n: number, seed = 3): number[] {
  const random = createRandom(seed);
  return Array.from({ length: n }, () => 40 * -Math.log(1 - random.next()) - 10);
}

/** The textbook bootstrap: draw n indices, copy, sort, take the statistic; then type-7 quantiles of the draws. */
function naiveBootstrap(values: readonly number[], q: number, iterations: number, seed: number): Interval {
  const sorted = [...values].sort((a, b) => a - b);
  const random = createRandom(seed);
  const draws: number[] = [];
  for (let b = 0; b < iterations; b++) {
    const resample = Array.from({ length: sorted.length }, () => sorted[random.nextBelow(sorted.length)]!);
    draws.push(percentile(resample, q));
  }
  return { low: percentile(draws, 0.025), high: percentile(draws, 0.975) };
}

describe('pairedBootstrap', () => {
  const deltas = sampleDeltas(300);

  it('gives the identical interval for the same seed', () => {
    const first = pairedBootstrap(deltas, quantileStatistic(0.5), { seed: 42 });
    const second = pairedBootstrap([...deltas].reverse(), quantileStatistic(0.5), { seed: 42 });
    assert.deepEqual(first, second);
  });

  it('gives a close but not identical interval for another seed', () => {
    const first = pairedBootstrap(deltas, quantileStatistic(0.5), { seed: 42 });
    const second = pairedBootstrap(deltas, quantileStatistic(0.5), { seed: 43 });
    assert.notDeepEqual(first, second);
    const width = first.high - first.low;
    assert.ok(Math.abs(first.low - second.low) < width / 4 && Math.abs(first.high - second.high) < width / 4, JSON.stringify({ first, second }));
  });

  it('equals the textbook resample-copy-sort bootstrap drawing the same indices', () => {
    for (const q of [0.5, 0.99]) {
      assert.deepEqual(pairedBootstrap(deltas, quantileStatistic(q), { seed: 9, iterations: 500 }), naiveBootstrap(deltas, q, 500, 9));
    }
  });

  it('brackets the sample median, and the p99 interval sits above the median one', () => {
    const [median, p99] = pairedBootstrapIntervals(deltas, [quantileStatistic(0.5), quantileStatistic(0.99)]);
    const point = percentile(deltas, 0.5);
    assert.ok(median!.low <= point && point <= median!.high);
    assert.ok(p99!.low > median!.high);
  });

  it('uses the same resamples for every statistic of one call', () => {
    const [together] = pairedBootstrapIntervals(deltas, [quantileStatistic(0.5), quantileStatistic(0.99)], { seed: 5 });
    assert.deepEqual(together, pairedBootstrap(deltas, quantileStatistic(0.5), { seed: 5 }));
  });

  it('reads quantiles and the mean from the multiplicities exactly as from the materialized resample', () => {
    const small = [5, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    const checks: number[] = [];
    pairedBootstrap(
      small,
      (resample) => {
        const sorted = resample.sorted();
        for (const q of [0, 0.01, 0.25, 0.5, 0.5001, 0.9, 0.99, 1]) checks.push(resample.quantile(q) - percentile([...sorted], q));
        let sum = 0;
        for (const value of sorted) sum += value;
        checks.push(resample.mean() - sum / sorted.length);
        return 0;
      },
      { iterations: 200 },
    );
    assert.equal(checks.length, 200 * 9);
    assert.ok(checks.every((difference) => Math.abs(difference) < 1e-12));
  });

  it('collapses to a point for a constant sample and bootstraps a mean', () => {
    assert.deepEqual(pairedBootstrap([7, 7, 7], quantileStatistic(0.5)), { low: 7, high: 7 });
    const interval = pairedBootstrap([0, 1, 0, 1, 1, 0, 1, 1], meanStatistic);
    assert.ok(interval.low < 0.625 && interval.high > 0.625 && interval.low >= 0 && interval.high <= 1);
  });

  it('rejects an empty sample, non-finite values, too few iterations and a non-finite statistic', () => {
    assert.throws(() => pairedBootstrap([], quantileStatistic(0.5)), { code: EvaluationErrorCode.invalidSample });
    assert.throws(() => pairedBootstrap([1, Number.NaN], quantileStatistic(0.5)), { code: EvaluationErrorCode.invalidSample });
    assert.throws(() => pairedBootstrap([1, 2], quantileStatistic(0.5), { iterations: 10 }), { code: EvaluationErrorCode.invalidOptions });
    assert.throws(() => pairedBootstrap([1, 2], () => Number.POSITIVE_INFINITY), { code: EvaluationErrorCode.invalidSample });
    assert.throws(() => quantileStatistic(99), { code: EvaluationErrorCode.invalidQuantile });
  });
});

describe('pairedBootstrapBothSides', () => {
  const ratio: ResamplePairStatistic = (stable, candidate) => candidate.quantile(0.99) / stable.quantile(0.99);

  it('resamples whole requests: a candidate exactly 1.5× stable gives exactly 1.5 in every resample', () => {
    const stable = sampleDeltas(200).map((value) => value + 100);
    const candidate = stable.map((value) => value * 1.5);
    const interval = pairedBootstrapBothSides(stable, candidate, ratio);
    assert.ok(Math.abs(interval.low - 1.5) < 1e-12 && Math.abs(interval.high - 1.5) < 1e-12, JSON.stringify(interval));
  });

  it('equals the textbook bootstrap that copies and sorts both sides of the drawn requests', () => {
    const stable = sampleDeltas(120, 1).map((value) => value + 100);
    const candidate = sampleDeltas(120, 2).map((value) => value + 110);
    const random = createRandom(4);
    const draws: number[] = [];
    for (let b = 0; b < 300; b++) {
      const picks = Array.from({ length: 120 }, () => random.nextBelow(120));
      draws.push(percentile(picks.map((i) => candidate[i]!), 0.99) / percentile(picks.map((i) => stable[i]!), 0.99));
    }
    const expected = { low: percentile(draws, 0.025), high: percentile(draws, 0.975) };
    const actual = pairedBootstrapBothSides(stable, candidate, ratio, { seed: 4, iterations: 300 });
    assert.ok(Math.abs(actual.low - expected.low) < 1e-12 && Math.abs(actual.high - expected.high) < 1e-12, JSON.stringify({ actual, expected }));
  });

  it('refuses sides of different lengths', () => {
    assert.throws(() => pairedBootstrapBothSides([1, 2], [1], ratio), { code: EvaluationErrorCode.invalidInput });
  });
});
