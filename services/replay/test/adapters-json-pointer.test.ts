import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePointer, isJsonPointer, resolvePointer } from '../src/adapters/json-pointer.js';

describe('RFC 6901 JSON pointers', () => {
  // The example document of RFC 6901 §5.
  const rfc = { foo: ['bar', 'baz'], '': 0, 'a/b': 1, 'c%d': 2, 'e^f': 3, 'g|h': 4, 'i\\j': 5, 'k"l': 6, ' ': 7, 'm~n': 8 };

  it('resolves every example of RFC 6901 section 5', () => {
    const expected: [string, unknown][] = [
      ['', rfc],
      ['/foo', ['bar', 'baz']],
      ['/foo/0', 'bar'],
      ['/', 0],
      ['/a~1b', 1],
      ['/c%d', 2],
      ['/e^f', 3],
      ['/g|h', 4],
      ['/i\\j', 5],
      ['/k"l', 6],
      ['/ ', 7],
      ['/m~0n', 8],
    ];
    for (const [pointer, value] of expected) assert.deepEqual(resolvePointer(rfc, compilePointer(pointer)), value, pointer);
  });

  it('decodes ~01 as the literal key "~1", not "/"', () => {
    assert.equal(resolvePointer({ '~1': 'tilde-one', '/': 'slash' }, compilePointer('/~01')), 'tilde-one');
  });

  it('reports a missing step as undefined instead of throwing', () => {
    const doc = { a: { b: [10, 20] }, s: 'text', n: null };
    for (const pointer of ['/x', '/a/x', '/a/b/2', '/a/b/-', '/a/b/01', '/a/b/1.0', '/s/0', '/n/x', '/a/b/0/deeper']) {
      assert.equal(resolvePointer(doc, compilePointer(pointer)), undefined, pointer);
    }
    assert.equal(resolvePointer(doc, compilePointer('/n')), null);
  });

  it('never follows inherited properties such as constructor or __proto__', () => {
    const doc = JSON.parse('{"a":{}}') as unknown;
    assert.equal(resolvePointer(doc, compilePointer('/a/constructor')), undefined);
    assert.equal(resolvePointer(doc, compilePointer('/a/__proto__')), undefined);
    assert.equal(resolvePointer(doc, compilePointer('/a/toString')), undefined);
    assert.equal(resolvePointer(JSON.parse('{"__proto__":{"x":1}}'), compilePointer('/__proto__/x')), 1, 'an own "__proto__" key from JSON is data');
  });

  it('rejects text that is not a pointer', () => {
    for (const text of ['a', 'a/b', '/a~', '/a~2', '#/a']) assert.equal(isJsonPointer(text), false, text);
    for (const text of ['', '/', '/a', '/a/0', '/~0~1']) assert.equal(isJsonPointer(text), true, text);
    assert.throws(() => compilePointer('id'), /not an RFC 6901 JSON pointer/);
  });
});
