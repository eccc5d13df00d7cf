import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_JSON_PATH_LENGTH, jsonDiff, jsonEqual, jsonValidity, readJson } from '../src/index.js';

describe('readJson and jsonValidity', () => {
  it('treats an answer starting with { or [ as JSON that must parse whole', () => {
    assert.equal(jsonValidity('  {"a": 1}\n'), true);
    assert.equal(jsonValidity('[1, 2, 3]'), true);
    assert.equal(jsonValidity('{"a": 1} and some prose'), false);
    assert.equal(jsonValidity('{"a": 1,}'), false);
  });

  it('reads the first ```json fenced block, in any case, and an unclosed fence to the end', () => {
    assert.deepEqual(readJson('Sure:\n```json\n{"ok": true}\n```\nAnything else?'), { kind: 'valid', value: { ok: true } });
    assert.deepEqual(readJson('```JSON\n[1]\n```'), { kind: 'valid', value: [1] });
    assert.deepEqual(readJson('Here:\n```json\n{"cut": "off'), { kind: 'invalid' });
  });

  it('does not call prose, bare scalars, other fences or an empty answer JSON at all', () => {
    assert.equal(jsonValidity('The answer is 42.'), null);
    assert.equal(jsonValidity('"just a string"'), null);
    assert.equal(jsonValidity('42'), null);
    assert.equal(jsonValidity('```python\nprint({})\n```'), null);
    assert.equal(jsonValidity('```json5\n{a: 1}\n```'), null);
    assert.equal(jsonValidity(''), null);
    assert.equal(jsonValidity(null), null);
  });
});

describe('jsonDiff', () => {
  it('counts added, removed and changed paths and lists them in document order', () => {
    const diff = jsonDiff(
      { a: { x: 1, y: [1, 2, 3] }, b: 2, 'odd key': true },
      { a: { x: 2, y: [1, 2] }, 'odd key': false, c: { deep: [1] } },
    );
    assert.deepEqual(diff, {
      added: 1,
      removed: 2,
      changed: 2,
      examples: [
        { change: 'changed', path: '$.a.x' },
        { change: 'removed', path: '$.a.y[2]' },
        { change: 'removed', path: '$.b' },
        { change: 'changed', path: '$["odd key"]' },
        { change: 'added', path: '$.c' },
      ],
    });
  });

  it('ignores key order, counts a type change once and reports a root change at $', () => {
    assert.deepEqual(jsonDiff({ a: 1, b: [true] }, { b: [true], a: 1 }), { added: 0, removed: 0, changed: 0, examples: [] });
    assert.deepEqual(jsonDiff({ a: { nested: 1 } }, { a: [1] }).examples, [{ change: 'changed', path: '$.a' }]);
    assert.deepEqual(jsonDiff([1], { 0: 1 }), { added: 0, removed: 0, changed: 1, examples: [{ change: 'changed', path: '$' }] });
    assert.deepEqual(jsonDiff(null, 0).changed, 1);
  });

  it('keeps at most 20 examples but counts every difference', () => {
    const stable = Array.from({ length: 50 }, (_, i) => i);
    const candidate = stable.map((value) => value + 1);
    const diff = jsonDiff(stable, candidate);
    assert.equal(diff.changed, 50);
    assert.equal(diff.examples.length, 20);
    assert.equal(diff.examples[19]!.path, '$[19]');
  });

  it('walks nesting far deeper than the call stack allows', () => {
    const depth = 100_000;
    const nested = (leaf: number) => JSON.parse(`${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`) as unknown;
    assert.equal(jsonDiff(nested(1), nested(2), 0).changed, 1);
    const [example] = jsonDiff(nested(1), nested(2)).examples;
    assert.equal(example!.path.length, MAX_JSON_PATH_LENGTH);
    assert.match(example!.path, /^\$\[0\]\[0\].*….*\[0\]$/u);
    assert.equal(jsonEqual(nested(1), nested(1)), true);
  });
});
