import { EvaluationError, EvaluationErrorCode } from './errors.js';

/** A seeded source of uniform random numbers; the same seed always gives the same sequence. */
export interface RandomSource {
  /** The next 32-bit unsigned integer. */
  nextUint32(): number;
  /** A float in [0, 1) with 32 bits of resolution. */
  next(): number;
  /**
   * An integer in [0, n), as `⌊next() · n⌋`. The bias of this mapping is below n / 2³², which is
   * negligible for the sample sizes a report resamples (it avoids a rejection loop per draw).
   */
  nextBelow(n: number): number;
  /** Fills `target` with draws of {@link RandomSource.nextBelow}(n), in order: the same stream, without a call per draw. */
  fillBelow(target: Uint32Array, n: number): void;
}

const TWO_TO_32 = 4_294_967_296;

/**
 * xoshiro128** (Blackman & Vigna, 2018) seeded through splitmix32, so any 32-bit seed, 0
 * included, gives a well-mixed non-zero state. Chosen over `Math.random` because reports must be
 * reproducible, and over mulberry32 for its 128-bit state (period 2¹²⁸ − 1) at the same cost.
 *
 * @param seed - an integer in [0, 2³²).
 * @throws {@link EvaluationError} `EVAL_INVALID_OPTIONS` when the seed is not such an integer.
 */
export function createRandom(seed: number): RandomSource {
  checkSeed(seed);
  let state = seed >>> 0;
  const split = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  return xoshiro128ss([split(), split(), split(), split()]);
}

/**
 * xoshiro128** from an explicit 128-bit state (four 32-bit words, not all zero). Exposed so the
 * generator can be checked against the reference implementation's output; use
 * {@link createRandom} otherwise.
 */
export function xoshiro128ss(state: readonly [number, number, number, number]): RandomSource {
  let [s0, s1, s2, s3] = state.map((word) => word >>> 0) as [number, number, number, number];
  if ((s0 | s1 | s2 | s3) === 0) {
    throw new EvaluationError(EvaluationErrorCode.invalidOptions, 'xoshiro128**: the state must not be all zero');
  }
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  const next = (): number => nextUint32() / TWO_TO_32;
  const fillBelow = (target: Uint32Array, n: number): void => {
    // The generator inlined on int32 locals (`| 0` keeps V8 off doubles): a report's bootstrap
    // draws tens of millions of indices. Same stream and mapping as nextBelow.
    let a = s0 | 0;
    let b = s1 | 0;
    let c = s2 | 0;
    let d = s3 | 0;
    for (let i = 0; i < target.length; i++) {
      const m = Math.imul(b, 5);
      const result = Math.imul((m << 7) | (m >>> 25), 9);
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = (d << 11) | (d >>> 21);
      // A Uint32Array store truncates, which is ⌊·⌋ for this non-negative value.
      target[i] = ((result >>> 0) / TWO_TO_32) * n;
    }
    [s0, s1, s2, s3] = [a >>> 0, b >>> 0, c >>> 0, d >>> 0];
  };
  return { nextUint32, next, nextBelow: (n) => Math.floor(next() * n), fillBelow };
}

/**
 * A seed derived from a base seed and a label (FNV-1a of the label, mixed with the seed), so each
 * statistic of a report draws its own stream: adding an arm or a metric leaves the intervals of
 * the others unchanged.
 */
export function deriveSeed(seed: number, label: string): number {
  checkSeed(seed);
  let hash = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    hash ^= label.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  let z = (hash ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= TWO_TO_32) {
    throw new EvaluationError(EvaluationErrorCode.invalidOptions, `seed must be an integer in [0, 2^32) (got ${String(seed)})`);
  }
}
