import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REFUSAL_WINDOW, isRefusal } from '../src/index.js';

describe('isRefusal', () => {
  const refusals = [
    "I can't help with that.",
    'I cannot assist with this request.',
    'I can not provide instructions for that.',
    "I won't help with creating malware.",
    "I'm unable to comply with that request.",
    'I am not able to answer that.',
    "I'm sorry, but I can't do that.",
    'I am sorry but that is not something I do.',
    'Sorry, but no.',
    'I apologise, but I have to decline.',
    'As an AI language model, I do not have opinions.',
    'As a large language model, I cannot browse.',
    'I must decline this request.',
    '  I\u2019m sorry, but\nI can\u2019t help with that.',
    'I CAN’T HELP WITH THAT',
  ];
  for (const text of refusals) {
    it(`flags ${JSON.stringify(text)}`, () => assert.equal(isRefusal(text), true));
  }

  const answers = [
    'Sure! Here is how to bake bread.',
    'The capital of France is Paris.',
    'I can help with that: first, open the settings.',
    "I'm sorry to hear that. Here are some things that may help.",
    '',
  ];
  for (const text of answers) {
    it(`does not flag ${JSON.stringify(text)}`, () => assert.equal(isRefusal(text), false));
  }

  it('does not flag a tool-call-only answer (null content)', () => {
    assert.equal(isRefusal(null), false);
  });

  it('only looks at the opening of the answer', () => {
    const late = `${'Here is the full explanation you asked for. '.repeat(10)}I can't help with the rest.`;
    assert.ok(late.indexOf("I can't") > REFUSAL_WINDOW);
    assert.equal(isRefusal(late), false);
    assert.equal(isRefusal(`Hmm. I can't help with that.`), true);
  });
});
