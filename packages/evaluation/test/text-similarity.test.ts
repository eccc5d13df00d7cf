import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRandom, editSimilarity, levenshteinDistance, rougeLF1 } from '../src/index.js';
import { close } from './fixtures.js';

/** Full-matrix Levenshtein over code points, the textbook definition, as a reference. */
function referenceLevenshtein(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  const d = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
  }
  return d[x.length]![y.length]!;
}

function randomText(seed: number, length: number, alphabet: string): string {
  const random = createRandom(seed);
  return Array.from({ length }, () => alphabet[random.nextBelow(alphabet.length)]).join('');
}

describe('levenshteinDistance', () => {
  it('gives the textbook distances', () => {
    assert.equal(levenshteinDistance('kitten', 'sitting'), 3);
    assert.equal(levenshteinDistance('flaw', 'lawn'), 2);
    assert.equal(levenshteinDistance('saturday', 'sunday'), 3);
    assert.equal(levenshteinDistance('', 'abc'), 3);
    assert.equal(levenshteinDistance('abc', 'abc'), 0);
  });

  it('counts an emoji outside the BMP as one code point, not two UTF-16 units', () => {
    assert.equal(levenshteinDistance('😀a', 'a'), 1);
    assert.equal(levenshteinDistance('a😀', 'a😃'), 1);
  });

  it('agrees with a full-matrix reference on seeded random strings', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const a = randomText(seed, 5 + (seed % 17), 'abc ');
      const b = randomText(seed + 1_000, 3 + (seed % 23), 'abc ');
      assert.equal(levenshteinDistance(a, b), referenceLevenshtein(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  });
});

describe('editSimilarity', () => {
  it('is 1 − distance / longer length on normalized text', () => {
    assert.ok(close(editSimilarity('kitten', 'sitting'), 1 - 3 / 7));
    assert.equal(editSimilarity('Hello   World\n', 'hello world'), 1);
    assert.equal(editSimilarity('', ''), 1);
    assert.equal(editSimilarity('', 'abc'), 0);
    assert.equal(editSimilarity('abc', 'xyz'), 0);
  });

  it('compares long answers that differ in one place exactly, since the shared ends cost nothing', () => {
    const prefix = 'x'.repeat(50_000);
    const suffix = 'y'.repeat(50_000);
    assert.ok(close(editSimilarity(`${prefix}a${suffix}`, `${prefix}b${suffix}`), 1 - 1 / 100_001));
  });

  it('past the cap counts every remaining code point as an edit, giving a lower bound', () => {
    // Exact: delete the leading "a", append one: distance 2 of 6.
    assert.ok(close(editSimilarity('abcdef', 'bcdefa'), 1 - 2 / 6));
    // Capped at 3: "abc" vs "bcd" costs 2, plus 3 remaining code points: 5 of 6.
    const capped = editSimilarity('abcdef', 'bcdefa', { maxCodePoints: 3 });
    assert.ok(close(capped, 1 - 5 / 6));
    assert.ok(capped <= editSimilarity('abcdef', 'bcdefa'));
  });
});

describe('rougeLF1', () => {
  it('reproduces the examples of Lin (2004): 0.75 for a changed word, 0.5 for a reordering', () => {
    assert.equal(rougeLF1('police killed the gunman', 'police kill the gunman'), 0.75);
    assert.equal(rougeLF1('police killed the gunman', 'the gunman kill police'), 0.5);
  });

  it('weighs precision and recall equally, with stable as the reference', () => {
    // LCS 5; precision 5/5, recall 5/6; F1 = 2·1·(5/6) / (1 + 5/6) = 10/11.
    assert.ok(close(rougeLF1('the cat sat on the mat', 'the cat on the mat'), 10 / 11));
    assert.ok(close(rougeLF1('the cat on the mat', 'the cat sat on the mat'), 10 / 11));
  });

  it('is 1 for two empty answers, 0 when only one is empty, and ignores case and spacing', () => {
    assert.equal(rougeLF1('', '  '), 1);
    assert.equal(rougeLF1('', 'words'), 0);
    assert.equal(rougeLF1('The  Cat', 'the cat'), 1);
  });

  it('keeps punctuation on its token, as whitespace tokenization does', () => {
    assert.equal(rougeLF1('on the mat.', 'on the mat'), (2 * 2) / 6);
  });

  it('past the token cap, the LCS of the heads gives a lower bound', () => {
    assert.equal(rougeLF1('a b c d', 'b c d a'), 0.75);
    // Capped at 2: "a b" vs "b c" share 1 token: 2·1 / 8.
    assert.equal(rougeLF1('a b c d', 'b c d a', { maxTokens: 2 }), 0.25);
  });
});
