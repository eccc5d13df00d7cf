import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationErrorCode, createRandom, deriveSeed, xoshiro128ss } from '../src/index.js';

describe('xoshiro128**', () => {
  it('matches the reference implementation from the state {1, 2, 3, 4}', () => {
    // The first outputs of Blackman & Vigna's xoshiro128starstar.c from that state.
    const random = xoshiro128ss([1, 2, 3, 4]);
    const outputs = Array.from({ length: 8 }, () => random.nextUint32());
    assert.deepEqual(outputs, [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849]);
  });

  it('is seeded through splitmix32: seed 42 gives the same words as an independent implementation', () => {
    const random = createRandom(42);
    assert.deepEqual(Array.from({ length: 4 }, () => random.nextUint32()), [2837322924, 544945897, 479756282, 3500138142]);
  });

  it('repeats its sequence for the same seed and differs for another', () => {
    const draw = (seed: number) => {
      const random = createRandom(seed);
      return Array.from({ length: 5 }, () => random.next());
    };
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
  });

  it('fills a buffer with exactly the draws nextBelow would give, and continues the same stream', () => {
    const one = createRandom(5);
    const batch = createRandom(5);
    const expected = Array.from({ length: 1_000 }, () => one.nextBelow(777));
    const filled = new Uint32Array(1_000);
    batch.fillBelow(filled, 777);
    assert.deepEqual([...filled], expected);
    assert.equal(batch.nextUint32(), one.nextUint32());
  });

  it('draws integers below n roughly uniformly', () => {
    const random = createRandom(1);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[random.nextBelow(10)]!++;
    // Each count is Binomial(100000, 0.1): sd ≈ 95; 6 sd is a bound no correct generator breaks.
    for (const count of counts) assert.ok(Math.abs(count - 10_000) < 570, `count ${count}`);
  });

  it('rejects a seed that is not a 32-bit unsigned integer and an all-zero state', () => {
    assert.throws(() => createRandom(-1), { code: EvaluationErrorCode.invalidOptions });
    assert.throws(() => createRandom(2 ** 32), { code: EvaluationErrorCode.invalidOptions });
    assert.throws(() => createRandom(1.5), { code: EvaluationErrorCode.invalidOptions });
    assert.throws(() => xoshiro128ss([0, 0, 0, 0]), { code: EvaluationErrorCode.invalidOptions });
  });
});

describe('deriveSeed', () => {
  it('is a pure function of the seed and the label, and separates labels', () => {
    assert.equal(deriveSeed(1, 'cand/e2eMs'), deriveSeed(1, 'cand/e2eMs'));
    assert.notEqual(deriveSeed(1, 'cand/e2eMs'), deriveSeed(1, 'cand/ttftMs'));
    assert.notEqual(deriveSeed(1, 'cand/e2eMs'), deriveSeed(2, 'cand/e2eMs'));
    const seed = deriveSeed(0, '');
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32);
  });
});
