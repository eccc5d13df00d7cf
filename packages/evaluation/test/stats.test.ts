import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationErrorCode, percentile, summarize } from '../src/index.js';
import { close } from './fixtures.js';

// Expected values from numpy 2.4: np.percentile(a, q * 100), default method "linear" (type 7).
const QUANTILES = [0, 0.25, 0.5, 0.9, 0.95, 0.99, 1];
const NUMPY: [number[], number[]][] = [
  [[3, 1, 4, 1, 5, 9, 2, 6], [1, 1.75, 3.5, 6.8999999999999995, 7.949999999999998, 8.79, 9]],
  [[15, 20, 35, 40, 50], [15, 20, 35, 46, 48, 49.6, 50]],
  [[1, 2, 3, 4], [1, 1.75, 2.5, 3.7, 3.8499999999999996, 3.9699999999999998, 4]],
  [[0.5, 12.25, 3.75, 100, 42, 7.125, 19.5, 64, 2, 33.3], [0.5, 4.59375, 15.875, 67.6, 83.79999999999995, 96.76, 100]],
  [[7], [7, 7, 7, 7, 7, 7, 7]],
];

describe('percentile', () => {
  for (const [values, expected] of NUMPY) {
    it(`matches numpy's linear (type 7) percentiles of [${values.join(', ')}] from q = 0 to q = 1`, () => {
      QUANTILES.forEach((q, index) => {
        const actual = percentile(values, q);
        assert.ok(close(actual, expected[index]!), `q=${q}: got ${actual}, numpy ${expected[index]}`);
      });
    });
  }

  it('returns the minimum at q = 0 and the maximum at q = 1 exactly', () => {
    const values = [0.1, 0.7, 0.2, 0.30000000000000004];
    assert.equal(percentile(values, 0), 0.1);
    assert.equal(percentile(values, 1), 0.7);
  });

  it('leaves the caller’s array in its original order', () => {
    const values = [3, 1, 2];
    percentile(values, 0.5);
    assert.deepEqual(values, [3, 1, 2]);
  });

  it('rejects a quantile given as a percentage, an empty sample and non-finite values', () => {
    assert.throws(() => percentile([1, 2], 99), { code: EvaluationErrorCode.invalidQuantile, message: /pass 0\.99 for p99/ });
    assert.throws(() => percentile([], 0.5), { code: EvaluationErrorCode.invalidSample });
    assert.throws(() => percentile([1, Number.NaN], 0.5), { code: EvaluationErrorCode.invalidSample });
  });
});

describe('summarize', () => {
  it('reports n = 0 and null statistics for an empty sample', () => {
    assert.deepEqual(summarize([]), { n: 0, mean: null, p50: null, p90: null, p95: null, p99: null, max: null });
  });

  it('gives the count, mean, type-7 percentiles and maximum of a sample', () => {
    const summary = summarize([3, 1, 4, 1, 5, 9, 2, 6]);
    assert.equal(summary.n, 8);
    assert.equal(summary.mean, 3.875);
    assert.equal(summary.max, 9);
    assert.ok(close(summary.p50, 3.5));
    assert.ok(close(summary.p90, 6.9));
    assert.ok(close(summary.p95, 7.95));
    assert.ok(close(summary.p99, 8.79));
  });
});
