import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationRecordSchema, type EvaluationRecord } from '@shadow-replay/contracts';
import {
  EXCERPT_ELLIPSIS,
  MAX_EXCERPT_CODE_POINTS,
  MAX_SAMPLE_VALUES,
  ReportSchema,
  WORST_PAIRS,
  answerExcerpt,
  buildReport,
  evaluatePair,
  renderPairsJsonl,
  sample,
  type PairExportLine,
} from '../src/index.js';
import { EXPERIMENT, SOURCES, evaluationRecord, responseEvent, toolCall } from './fixtures.js';

function pair(i: number, stableText: string, candidateText: string, stableE2e: number, candidateE2e: number): EvaluationRecord {
  const requestId = `req-${String(i).padStart(3, '0')}`;
  return evaluatePair({
    experimentId: EXPERIMENT,
    requestId,
    arm: 'cand',
    stable: responseEvent({ requestId, content: stableText, e2eMs: stableE2e }),
    candidate: responseEvent({ arm: 'cand', requestId, content: candidateText, e2eMs: candidateE2e }),
    sources: SOURCES,
    evaluatorVersion: 'test',
    now: 1_714_521_700_000 + i,
  });
}

function reportOf(records: EvaluationRecord[]) {
  const built = buildReport({
    experimentId: EXPERIMENT,
    window: { from: 0, to: 1 },
    generatedAt: 2,
    records,
    outcomes: { cand: { consumed: records.length, evaluated: records.length } },
  });
  assert.ok(ReportSchema.safeParse(built).success);
  return built.arms[0]!;
}

describe('answer excerpts', () => {
  it('travel in comparison.excerpts and survive the EvaluationRecord schema', () => {
    const record = pair(1, 'stable says hi', 'candidate says <b>hi</b>', 100, 120);
    const parsed = EvaluationRecordSchema.parse(JSON.parse(JSON.stringify(record)));
    assert.deepEqual(parsed.comparison.excerpts, { stable: 'stable says hi', candidate: 'candidate says <b>hi</b>' });
  });

  it('are cut to MAX_EXCERPT_CODE_POINTS code points with an ellipsis, without splitting a surrogate pair', () => {
    const long = '😀'.repeat(MAX_EXCERPT_CODE_POINTS + 5);
    const excerpt = answerExcerpt(responseEvent({ content: long }))!;
    assert.equal([...excerpt].length, MAX_EXCERPT_CODE_POINTS);
    assert.ok(excerpt.endsWith(`😀${EXCERPT_ELLIPSIS}`));
    const exact = 'x'.repeat(MAX_EXCERPT_CODE_POINTS);
    assert.equal(answerExcerpt(responseEvent({ content: exact })), exact);
  });

  it('list tool calls after the content and are null for a side without an answer', () => {
    assert.equal(answerExcerpt(responseEvent({ content: null, toolCalls: [toolCall('lookup', '{"id":1}')] })), '[tool call] lookup({"id":1})');
    assert.equal(answerExcerpt(responseEvent({ content: 'Let me check.', toolCalls: [toolCall('lookup', '{}')] })), 'Let me check.\n[tool call] lookup({})');
    assert.equal(answerExcerpt(responseEvent({ outcome: 'error' })), null);
  });
});

describe('report samples', () => {
  it('are sorted, rounded to 0.01 ms and counted before thinning', () => {
    assert.deepEqual(sample([3.14159, 1, 2.005, 2]), { n: 4, values: [1, 2, 2.01, 3.14] });
  });

  it('thin a long series to evenly spaced order statistics, keeping the minimum and the maximum', () => {
    const values = Array.from({ length: 10_001 }, (_, i) => 10_000 - i);
    const thinned = sample(values, 101);
    assert.equal(thinned.n, 10_001);
    assert.equal(thinned.values.length, 101);
    assert.deepEqual(thinned.values.slice(0, 3), [0, 100, 200]);
    assert.equal(thinned.values.at(-1), 10_000);
  });

  it('hold both sides, and the deltas, of the pairs where both answered ok, at most MAX_SAMPLE_VALUES each', () => {
    const records = [
      ...Array.from({ length: 40 }, (_, i) => evaluationRecord(i, { stableE2e: 100 + i, candidateE2e: 110 + i })),
      evaluationRecord(40, { candidateOutcome: 'error', candidateE2e: 5 }),
    ];
    const { samples } = reportOf(records);
    assert.equal(samples!.maxValues, MAX_SAMPLE_VALUES);
    assert.equal(samples!.e2eMs.stable.n, 40);
    assert.equal(samples!.e2eMs.candidate.values[0], 110);
    assert.deepEqual(new Set(samples!.deltaE2eMs.values), new Set([10]));
    assert.equal(samples!.ttftMs.candidate.n, 40);
    assert.equal(samples!.deltaTtftMs.n, 40);
  });
});

describe('worst pairs', () => {
  it('list the least similar answers first, then the largest slowdowns, ten at most, with both texts', () => {
    const records = [
      ...Array.from({ length: 30 }, (_, i) => pair(i, `answer number ${i}`, `answer number ${i}`, 100, 100 + i)),
      pair(30, 'alpha beta gamma delta', 'completely different words here', 100, 101),
      pair(31, 'alpha beta gamma delta', 'alpha beta gamma epsilon', 100, 90),
    ];
    const worst = reportOf(records).worstPairs!;
    assert.equal(worst.length, WORST_PAIRS);
    assert.deepEqual(
      worst.slice(0, 2).map((entry) => [entry.requestId, entry.reason]),
      [
        ['req-030', 'least_similar'],
        ['req-031', 'least_similar'],
      ],
    );
    assert.deepEqual(
      worst.slice(2).map((entry) => entry.requestId),
      ['req-029', 'req-028', 'req-027', 'req-026', 'req-025', 'req-024', 'req-023', 'req-022'],
    );
    assert.ok(worst.slice(2).every((entry) => entry.reason === 'slowest'));
    assert.equal(worst[0]!.stableText, 'alpha beta gamma delta');
    assert.equal(worst[0]!.candidateText, 'completely different words here');
    assert.equal(worst[2]!.deltaE2eMs, 29);
  });

  it('carry null texts for records written before excerpts existed, and skip pairs that neither differ nor slowed down', () => {
    const records = [evaluationRecord(1, { exactMatch: false, comparison: { editSimilarity: 0.5 } }), evaluationRecord(2, { candidateE2e: 300 })];
    const worst = reportOf(records).worstPairs!;
    assert.deepEqual(worst, [{ requestId: 'req-1', reason: 'least_similar', editSimilarity: 0.5, deltaE2eMs: 0, deltaTtftMs: 10, stableText: null, candidateText: null }]);
  });
});

describe('renderPairsJsonl', () => {
  it('writes one JSON line per record, by arm then request id, with the excerpts beside the comparison', () => {
    const records = [pair(2, 'b', 'B', 100, 120), { ...pair(1, 'a', 'A', 100, 90), arm: 'z-arm' }, pair(1, 'a', 'a', 100, 100)];
    const text = renderPairsJsonl(records);
    assert.ok(text.endsWith('\n'));
    const lines = text.trimEnd().split('\n').map((line) => JSON.parse(line) as PairExportLine);
    assert.deepEqual(
      lines.map((line) => `${line.arm}/${line.requestId}`),
      ['cand/req-001', 'cand/req-002', 'z-arm/req-001'],
    );
    const second = lines[1]!;
    assert.deepEqual(second.excerpts, { stable: 'b', candidate: 'B' });
    assert.equal('excerpts' in second.comparison, false);
    assert.equal(second.comparison.normalizedMatch, true);
    assert.deepEqual(second.deltas, { e2eMs: 20, ttftMs: 0 });
    assert.equal(second.evaluatedAt, '2024-05-01T00:01:40.002Z');
    assert.equal(second.stable.e2eMs, 100);
  });

  it('writes nothing for no records', () => {
    assert.equal(renderPairsJsonl([]), '');
  });
});
