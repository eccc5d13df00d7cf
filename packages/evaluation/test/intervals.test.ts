import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationErrorCode, newcombeDiffInterval, wilsonInterval } from '../src/index.js';

const Z_EXACT = 1.959963984540054;

/** Published intervals are quoted to 4 decimals. */
function near(actual: number, expected: number, tolerance = 5e-5): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `got ${actual}, expected ${expected}`);
}

describe('wilsonInterval', () => {
  // Newcombe (1998a), Statistics in Medicine 17:857–872, Table I, method 3 (score, no continuity correction).
  const published: [number, number, number, number][] = [
    [5, 10, 0.2366, 0.7634],
    [0, 10, 0, 0.2775],
    [10, 10, 0.7225, 1],
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
    [29, 29, 0.883, 1],
  ];
  for (const [successes, n, low, high] of published) {
    it(`gives [${low}, ${high}] for ${successes}/${n}`, () => {
      const interval = wilsonInterval(successes, n);
      near(interval.low, low);
      near(interval.high, high);
    });
  }

  it('matches scipy 1.17 binomtest(k, n).proportion_ci(method="wilson") with the exact normal quantile', () => {
    const interval = wilsonInterval(81, 263, Z_EXACT);
    assert.ok(Math.abs(interval.low - 0.2552885198782742) < 1e-12);
    assert.ok(Math.abs(interval.high - 0.36620957698280004) < 1e-12);
  });

  it('pins the bounds to exactly 0 and 1 at the extremes and accepts half counts', () => {
    assert.equal(wilsonInterval(0, 3).low, 0);
    assert.equal(wilsonInterval(3, 3).high, 1);
    const half = wilsonInterval(2.5, 5);
    near(half.low + half.high, 1, 1e-12);
  });

  it('rejects an empty sample, impossible counts and a bad z', () => {
    assert.throws(() => wilsonInterval(0, 0), { code: EvaluationErrorCode.invalidSample });
    assert.throws(() => wilsonInterval(11, 10), { code: EvaluationErrorCode.invalidSample });
    assert.throws(() => wilsonInterval(-1, 10), { code: EvaluationErrorCode.invalidSample });
    assert.throws(() => wilsonInterval(1, 10, 0), { code: EvaluationErrorCode.invalidOptions });
  });
});

describe('newcombeDiffInterval', () => {
  // Newcombe (1998b), Statistics in Medicine 17:873–890, Table II, method 10 (hybrid score, no continuity correction).
  const published: [[number, number], [number, number], number, number][] = [
    [[56, 70], [48, 80], 0.0524, 0.3339],
    [[9, 10], [3, 10], 0.1705, 0.809],
    [[5, 56], [0, 29], -0.0381, 0.1926],
    [[0, 10], [0, 20], -0.1611, 0.2775],
    [[0, 10], [0, 10], -0.2775, 0.2775],
    [[10, 10], [0, 20], 0.6791, 1],
    [[10, 10], [0, 10], 0.6075, 1],
  ];
  for (const [[s1, n1], [s2, n2], low, high] of published) {
    it(`gives [${low}, ${high}] for ${s1}/${n1} − ${s2}/${n2}`, () => {
      const interval = newcombeDiffInterval({ successes: s1, n: n1 }, { successes: s2, n: n2 });
      near(interval.low, low);
      near(interval.high, high);
    });
  }

  it('gives [0.0582, 0.8062] for 6/7 − 2/7 with the exact normal quantile, as the table does', () => {
    const interval = newcombeDiffInterval({ successes: 6, n: 7 }, { successes: 2, n: 7 }, Z_EXACT);
    near(interval.low, 0.0582);
    near(interval.high, 0.8062);
  });

  it('is antisymmetric: swapping the samples negates and swaps the bounds', () => {
    const forward = newcombeDiffInterval({ successes: 3, n: 40 }, { successes: 1, n: 60 });
    const backward = newcombeDiffInterval({ successes: 1, n: 60 }, { successes: 3, n: 40 });
    near(forward.low, -backward.high, 1e-15);
    near(forward.high, -backward.low, 1e-15);
  });
});
