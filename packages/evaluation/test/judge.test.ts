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

describe('the judge in the report', () => {
  it('counts ties and inconsistent verdicts as half a win, with a Wilson interval', async () => {
    const { buildReport } = await import('../src/report.js');
    const { evaluationRecord } = await import('./fixtures.js');
    const verdicts = ['win', 'win', 'win', 'loss', 'tie', 'auto_tie', 'inconsistent', 'parse_error', 'not_sampled'];
    const records = verdicts.map((verdict, i) => ({ ...evaluationRecord(i), judge: { verdict, tokens: 10, costUsd: 0.001 } }));
    const experimentId = records[0]?.experimentId ?? '';
    const report = buildReport({ experimentId, window: { from: 0, to: 1 }, generatedAt: 2, records, outcomes: { cand: { consumed: 9, evaluated: 9 } } });
    const judge = report.arms[0]?.judge;
    assert.equal(judge?.n, 7);
    assert.equal(judge?.wins, 3);
    assert.equal(judge?.losses, 1);
    assert.equal(judge?.ties, 2);
    assert.equal(judge?.inconsistent, 1);
    assert.equal(judge?.parseErrors, 1);
    assert.equal(judge?.notSampled, 1);
    assert.equal(judge?.winRate, (3 + 3 / 2) / 7);
    assert.ok((judge?.ci95?.low ?? 1) < (judge?.winRate ?? 0) && (judge?.winRate ?? 1) < (judge?.ci95?.high ?? 0));
    assert.equal(judge?.tokens, 90);
  });
});

describe('the judge gate of the verdict', () => {
  it('fails an arm the judge clearly prefers less, passes one it clearly prefers, and is inconclusive in between', async () => {
    const { buildReport } = await import('../src/report.js');
    const { evaluationRecord } = await import('./fixtures.js');
    const verdictFor = (verdicts: string[]) => {
      const records = verdicts.map((verdict, i) => ({ ...evaluationRecord(i), judge: { verdict } }));
      const report = buildReport({ experimentId: records[0]?.experimentId ?? '', window: { from: 0, to: 1 }, generatedAt: 2, records, outcomes: { cand: { consumed: records.length, evaluated: records.length } } }, { maxErrorRateIncrease: 0.2 });
      return report.arms[0]?.verdict;
    };
    // 400 pairs: enough for the p99 gate to be decided, so the judge decides the verdict.
    const losing = verdictFor(Array.from({ length: 400 }, (_, i) => (i < 67 ? 'win' : 'loss')));
    assert.equal(losing?.status, 'fail');
    assert.ok(losing?.reasons.some((reason) => reason.startsWith('judge win rate') && reason.includes('upper end is below')), losing?.reasons.join(' | '));
    assert.equal(verdictFor(Array.from({ length: 400 }, (_, i) => (i < 333 ? 'win' : 'tie')))?.status, 'pass');
    const even = verdictFor(Array.from({ length: 400 }, (_, i) => (i % 50 < 23 ? 'win' : 'loss')));
    assert.equal(even?.status, 'inconclusive');
    assert.ok(even?.reasons.some((reason) => reason.startsWith('judge win rate') && reason.includes('straddles')), even?.reasons.join(' | '));
  });
});
