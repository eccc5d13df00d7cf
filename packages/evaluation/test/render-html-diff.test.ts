import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DiffKind, MAX_DIFF_CELLS, diffSide, diffTokens, wordDiff, type DiffPart } from '../src/index.js';

function side(parts: readonly DiffPart[], drop: DiffKind): string {
  return parts
    .filter((part) => part.kind !== drop)
    .map((part) => part.text)
    .join('');
}

describe('wordDiff', () => {
  it('marks the words only in the first text as removed and only in the second as added', () => {
    assert.deepEqual(wordDiff('the quick brown fox', 'the slow brown fox'), [
      { kind: 'equal', text: 'the ' },
      { kind: 'removed', text: 'quick' },
      { kind: 'added', text: 'slow' },
      { kind: 'equal', text: ' brown fox' },
    ]);
  });

  it('keeps punctuation apart from words, so a changed comma does not swallow its word', () => {
    assert.deepEqual(wordDiff('Yes, it is.', 'Yes it is!'), [
      { kind: 'equal', text: 'Yes' },
      { kind: 'removed', text: ',' },
      { kind: 'equal', text: ' it is' },
      { kind: 'removed', text: '.' },
      { kind: 'added', text: '!' },
    ]);
    assert.deepEqual(diffTokens("I can't, 42x"), ['I', ' ', "can't", ',', ' ', '42x']);
  });

  it('gives back both texts exactly, whitespace, emoji and markup included', () => {
    const cases = [
      ['', ''],
      ['', 'new text'],
      ['old text', ''],
      ['same', 'same'],
      ['a  b\n\tc 👍🏽', 'a b\nc 👍 d'],
      ['<script>alert(1)</script> ok', '<b>ok</b>'],
      ['one two three four five six', 'six five four three two one'],
    ] as const;
    for (const [before, after] of cases) {
      const parts = wordDiff(before, after);
      assert.equal(side(parts, DiffKind.added), before);
      assert.equal(side(parts, DiffKind.removed), after);
      assert.ok(parts.every((part, index) => part.text !== '' && part.kind !== parts[index - 1]?.kind), 'runs are merged and never empty');
    }
  });

  it('aligns on a longest common subsequence', () => {
    const parts = wordDiff('a b c d e', 'b x d e y');
    assert.equal(parts.filter((part) => part.kind === DiffKind.equal).map((part) => part.text.trim()).filter(Boolean).join(' '), 'b d e');
  });

  it('shows the middle as removed then added rather than aligning it when the table would exceed MAX_DIFF_CELLS', () => {
    const words = Math.ceil(Math.sqrt(MAX_DIFF_CELLS) / 2) + 10;
    const before = `start ${Array.from({ length: words }, (_, i) => `a${i}`).join(' ')} end`;
    const after = `start ${Array.from({ length: words }, (_, i) => `b${i}`).join(' ')} end`;
    const parts = wordDiff(before, after);
    assert.deepEqual(
      parts.map((part) => part.kind),
      ['equal', 'removed', 'added', 'equal'],
    );
    assert.equal(side(parts, DiffKind.added), before);
  });
});

describe('diffSide', () => {
  it('keeps one side and joins changed words separated only by whitespace into one run', () => {
    const parts = wordDiff('we open at nine today', 'they close at ten today');
    assert.deepEqual(diffSide(parts, 'before'), [
      { kind: 'removed', text: 'we open' },
      { kind: 'equal', text: ' at ' },
      { kind: 'removed', text: 'nine' },
      { kind: 'equal', text: ' today' },
    ]);
    assert.deepEqual(diffSide(parts, 'after'), [
      { kind: 'added', text: 'they close' },
      { kind: 'equal', text: ' at ' },
      { kind: 'added', text: 'ten' },
      { kind: 'equal', text: ' today' },
    ]);
  });

  it('leaves the whitespace at the ends of a change unhighlighted and gives the side back when joined', () => {
    const before = 'keep this  and that\n';
    const after = 'keep these and that\n';
    const parts = wordDiff(before, after);
    for (const [name, text] of [
      ['before', before],
      ['after', after],
    ] as const) {
      const runs = diffSide(parts, name);
      assert.equal(runs.map((run) => run.text).join(''), text);
      assert.ok(runs.every((run) => run.kind === DiffKind.equal || run.text.trim() === run.text), `${name}: ${JSON.stringify(runs)}`);
    }
  });
});
