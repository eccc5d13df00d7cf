import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EvaluationErrorCode,
  newcombeDiffInterval,
  quantileInterval,
  quantileIntervalMinSamples,
  regularizedIncompleteBeta,
  wilsonInterval,
  winRateInterval,
} from '../src/index.js';

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

describe('winRateInterval (ties count half)', () => {
  // Reference: the same definition solved numerically with scipy 1.17 (brentq on
  // n (p̂ − p)² − 1.96² (p(1 − p) − min(τ, 2p, 2(1 − p)) / 4), walking out from p̂).
  const reference: [number, number, number, number, number][] = [
    [50, 30, 100, 0.569134764677472, 0.7197667930797276],
    [0, 100, 100, 0.4815025962619992, 0.5184974037380009],
    [0, 10, 100, 0.027614270806568066, 0.09995723952028245],
    [5, 20, 30, 0.40273871471200295, 0.597261285287997],
    [300, 1500, 2000, 0.514060609870769, 0.5358435342492055],
  ];
  for (const [wins, ties, n, low, high] of reference) {
    it(`gives [${low.toFixed(4)}, ${high.toFixed(4)}] for ${wins} wins and ${ties} ties of ${n}`, () => {
      const interval = winRateInterval(wins, ties, n);
      near(interval.low, low, 1e-9);
      near(interval.high, high, 1e-9);
    });
  }

  it("is Wilson's interval when there is no tie, and narrower than Wilson's of wins + ties / 2 when there are", () => {
    assert.deepEqual(winRateInterval(81, 0, 263), wilsonInterval(81, 263));
    assert.deepEqual(winRateInterval(0, 0, 20), wilsonInterval(0, 20));
    const tied = winRateInterval(50, 30, 100);
    const wilson = wilsonInterval(65, 100);
    assert.ok(tied.low > wilson.low && tied.high < wilson.high, JSON.stringify({ tied, wilson }));
  });

  it('has a positive width when every pair is a tie: ½ ± about z² / 2n', () => {
    const interval = winRateInterval(0, 100, 100);
    near(interval.low, 0.5 / (1 + 1.96 ** 2 / 100), 1e-12);
    near(interval.high, 1 - interval.low, 1e-12);
  });

  it('rejects impossible counts', () => {
    assert.throws(() => winRateInterval(60, 50, 100), { code: EvaluationErrorCode.invalidSample });
    assert.throws(() => winRateInterval(1.5, 0, 10), { code: EvaluationErrorCode.invalidSample });
  });
});

describe('regularizedIncompleteBeta', () => {
  // scipy 1.17 scipy.special.betainc(a, b, x).
  const published: [number, number, number, number][] = [
    [2, 3, 0.4, 0.5248],
    [0.5, 0.5, 0.3, 0.36901011956554536],
    [367.5, 1.5, 0.99, 0.06039894039791896],
    [990.2, 10.8, 0.99, 0.5584803281978643],
    [5, 200, 0.01, 0.05540973034281645],
    [30000, 300, 0.99, 0.42369861851556184],
  ];
  for (const [a, b, x, expected] of published) {
    it(`gives ${expected} for I_${x}(${a}, ${b})`, () => near(regularizedIncompleteBeta(a, b, x), expected, 1e-10 * Math.max(1, expected)));
  }
});

describe('quantileInterval (fractional order statistics)', () => {
  it('matches the same construction with scipy 1.17 (brentq on betainc) on fixed samples', () => {
    const sample = Array.from({ length: 400 }, (_, i) => ((i + 1) * 7919 % 1000) / 10);
    const p99 = quantileInterval(sample, 0.99)!;
    near(p99.low, 97.72009846770527, 1e-6);
    near(p99.high, 99.85172138157004, 1e-6);
    const median = quantileInterval(sample, 0.5)!;
    near(median.low, 45.673590209263494, 1e-6);
    near(median.high, 55.42640979073651, 1e-6);
    const ranks = quantileInterval(Array.from({ length: 1000 }, (_, i) => i + 1), 0.99)!;
    near(ranks.low, 983.9131148210184, 1e-6);
    near(ranks.high, 996.1451276299633, 1e-6);
  });

  it('exists from the smallest n whose extreme order statistic brackets the quantile: 368 for a p99', () => {
    assert.equal(quantileIntervalMinSamples(0.99), 368);
    assert.equal(quantileIntervalMinSamples(0.95), 72);
    assert.equal(quantileIntervalMinSamples(0.5), 6);
    const tailAt = (n: number) => 0.99 ** n;
    assert.ok(tailAt(368) <= 0.025 && tailAt(367) > 0.025);
    assert.equal(quantileInterval(Array.from({ length: 367 }, (_, i) => i), 0.99), null);
    assert.notEqual(quantileInterval(Array.from({ length: 368 }, (_, i) => i), 0.99), null);
  });

  it('rejects the extreme quantiles, which have no interval', () => {
    assert.throws(() => quantileInterval([1, 2, 3], 1), { code: EvaluationErrorCode.invalidQuantile });
    assert.throws(() => quantileInterval([1, 2, 3], 0), { code: EvaluationErrorCode.invalidQuantile });
  });
});
