import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JudgeVerdict, combineVerdicts, judgePrompt, lastUserTurn, parseVerdict } from '../src/judge.js';

describe('LLM-as-judge verdicts', () => {
  it('lets a side win only when both orders agree', () => {
    // First order: A = stable, B = candidate. Second: A = candidate, B = stable.
    assert.equal(combineVerdicts('B', 'A'), JudgeVerdict.win);
    assert.equal(combineVerdicts('A', 'B'), JudgeVerdict.loss);
    assert.equal(combineVerdicts('tie', 'tie'), JudgeVerdict.tie);
    assert.equal(combineVerdicts('A', 'A'), JudgeVerdict.inconsistent, 'a judge that always says "A" is position-biased');
    assert.equal(combineVerdicts('B', 'tie'), JudgeVerdict.inconsistent);
  });

  it('parses a strict JSON verdict, bare or fenced, and keeps the raw text otherwise', () => {
    assert.deepEqual(parseVerdict('{"winner": "B", "reason": "more accurate"}'), { ok: true, winner: 'B', reason: 'more accurate' });
    assert.deepEqual(parseVerdict('Here:\n```json\n{"winner":"TIE"}\n```'), { ok: true, winner: 'tie', reason: '' });
    assert.deepEqual(parseVerdict('Assistant A is better.'), { ok: false, raw: 'Assistant A is better.' });
    assert.deepEqual(parseVerdict('{"winner": "C"}'), { ok: false, raw: '{"winner": "C"}' });
  });

  it('blinds the answers as A and B in the MT-bench layout, after the rubric and the question', () => {
    const prompt = judgePrompt('RUBRIC', 'What is 2+2?', 'four', '4');
    assert.ok(prompt.startsWith('RUBRIC'));
    assert.ok(prompt.indexOf("[The Start of Assistant A's Answer]\nfour") > prompt.indexOf('What is 2+2?'));
    assert.ok(prompt.includes("[The Start of Assistant B's Answer]\n4\n[The End of Assistant B's Answer]"));
    assert.ok(!/stable|candidate/i.test(prompt), 'nothing tells the judge which side is which');
  });

  it('judges on the last user turn', () => {
    assert.equal(lastUserTurn([{ role: 'user', content: 'first' }, { role: 'assistant', content: 'x' }, { role: 'user', content: [{ type: 'text', text: 'second' }] }]), 'second');
  });
});
