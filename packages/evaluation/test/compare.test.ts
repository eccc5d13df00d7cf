import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareResponses, normalizeText, toolCallsAgree } from '../src/index.js';
import { close, responseEvent, toolCall } from './fixtures.js';

describe('compareResponses', () => {
  it('counts a whitespace- and case-only difference as a normalized match but not an exact one', () => {
    const stable = responseEvent({ content: 'The answer is 42.' });
    const candidate = responseEvent({ arm: 'cand', content: '  the   ANSWER is\n42. ' });
    const comparison = compareResponses(stable, candidate);
    assert.equal(comparison.exactMatch, false);
    assert.equal(comparison.normalizedMatch, true);
    assert.equal(comparison.finishReasonAgreement, true);
  });

  it('reports identical answers as an exact match with a length ratio of 1', () => {
    const comparison = compareResponses(responseEvent(), responseEvent({ arm: 'cand' }));
    assert.deepEqual(comparison, {
      exactMatch: true,
      normalizedMatch: true,
      lengthRatio: 1,
      finishReasonAgreement: true,
      toolCallAgreement: true,
      editSimilarity: 1,
      rougeLF1: 1,
      jsonValid: { stable: null, candidate: null },
      jsonDiff: null,
      refusal: { stable: false, candidate: false },
    });
  });

  it('divides candidate by stable characters for the length ratio and gives null for an empty stable answer', () => {
    const longer = compareResponses(responseEvent({ content: 'abcd' }), responseEvent({ arm: 'cand', content: 'abcdef' }));
    assert.equal(longer.lengthRatio, 1.5);
    const emptyStable = compareResponses(responseEvent({ content: '' }), responseEvent({ arm: 'cand', content: 'x' }));
    assert.equal(emptyStable.lengthRatio, null);
  });

  it('detects a finish-reason disagreement even when the text is the same', () => {
    const comparison = compareResponses(responseEvent(), responseEvent({ arm: 'cand', finishReason: 'length' }));
    assert.equal(comparison.exactMatch, true);
    assert.equal(comparison.finishReasonAgreement, false);
  });

  it('compares tool-call arguments as parsed JSON, so key order and spacing do not matter', () => {
    const stable = responseEvent({ content: null, toolCalls: [toolCall('get_weather', '{"city":"Paris","units":"c"}')], finishReason: 'tool_calls' });
    const same = responseEvent({ arm: 'cand', content: '', toolCalls: [toolCall('get_weather', '{ "units": "c", "city": "Paris" }')], finishReason: 'tool_calls' });
    assert.equal(compareResponses(stable, same).exactMatch, true);

    const otherArgs = responseEvent({ arm: 'cand', content: null, toolCalls: [toolCall('get_weather', '{"city":"Lyon","units":"c"}')], finishReason: 'tool_calls' });
    const result = compareResponses(stable, otherArgs);
    assert.equal(result.exactMatch, false);
    assert.equal(result.normalizedMatch, false);
    assert.equal(result.toolCallAgreement, false);
  });

  it('treats different function names, different call counts and unparsable but identical arguments correctly', () => {
    assert.equal(toolCallsAgree([toolCall('a', '{}')], [toolCall('b', '{}')]), false);
    assert.equal(toolCallsAgree([toolCall('a', '{}')], [toolCall('a', '{}'), toolCall('a', '{}')]), false);
    assert.equal(toolCallsAgree([toolCall('a', '{"x": [1, 2]}')], [toolCall('a', '{"x": [2, 1]}')]), false);
    assert.equal(toolCallsAgree([toolCall('a', '{not json')], [toolCall('a', '{not json')]), true);
    assert.equal(toolCallsAgree([toolCall('a', '{}'), toolCall('b', '{}')], [toolCall('b', '{}'), toolCall('a', '{}')]), false);
    assert.equal(toolCallsAgree([toolCall('a', '{"n": 1.0, "o": {"p": null}}')], [toolCall('a', '{"o":{"p":null},"n":1}')]), true);
    assert.equal(toolCallsAgree([], []), true);
  });

  it('matches nothing when a side has no response, and keeps the per-side metrics of the side that answered', () => {
    const comparison = compareResponses(responseEvent({ content: "I'm sorry, but I can't do that." }), responseEvent({ arm: 'cand', outcome: 'error' }));
    assert.equal(comparison.exactMatch, false);
    assert.equal(comparison.normalizedMatch, false);
    assert.equal(comparison.lengthRatio, null);
    assert.equal(comparison.finishReasonAgreement, false);
    assert.equal(comparison.editSimilarity, null);
    assert.equal(comparison.rougeLF1, null);
    assert.equal(comparison.jsonDiff, null);
    assert.deepEqual(comparison.refusal, { stable: true, candidate: null });
    assert.deepEqual(comparison.jsonValid, { stable: null, candidate: null });
  });

  it('scores text similarity on normalized text: edit similarity and ROUGE-L F1 with stable as the reference', () => {
    const comparison = compareResponses(
      responseEvent({ content: 'The cat sat on the mat' }),
      responseEvent({ arm: 'cand', content: 'the  cat on THE mat' }),
    );
    // Normalized: "the cat sat on the mat" (22) → "the cat on the mat" (18): 4 deletions.
    assert.ok(close(comparison.editSimilarity, 1 - 4 / 22));
    // LCS 5 of 6 reference and 5 candidate tokens: F1 = 2·5 / (6 + 5).
    assert.ok(close(comparison.rougeLF1, 10 / 11));
  });

  it('checks JSON validity per side and diffs the structures when both parse', () => {
    const comparison = compareResponses(
      responseEvent({ content: '{"name": "Ada", "tags": ["x"], "age": 36}' }),
      responseEvent({ arm: 'cand', content: 'Here it is:\n```json\n{"name": "Ada", "tags": ["x", "y"], "age": "36"}\n```' }),
    );
    assert.deepEqual(comparison.jsonValid, { stable: true, candidate: true });
    assert.deepEqual(comparison.jsonDiff, {
      added: 1,
      removed: 0,
      changed: 1,
      examples: [
        { change: 'added', path: '$.tags[1]' },
        { change: 'changed', path: '$.age' },
      ],
    });

    const truncated = compareResponses(
      responseEvent({ content: '[1, 2, 3]' }),
      responseEvent({ arm: 'cand', content: '[1, 2, ', finishReason: 'length' }),
    );
    assert.deepEqual(truncated.jsonValid, { stable: true, candidate: false });
    assert.equal(truncated.jsonDiff, null);
  });

  it('flags a refusal on the side that refused', () => {
    const comparison = compareResponses(
      responseEvent({ content: 'Here is a haiku about the sea.' }),
      responseEvent({ arm: 'cand', content: 'I can’t help with that request.' }),
    );
    assert.deepEqual(comparison.refusal, { stable: false, candidate: true });
  });

  it('gives two tool-call-only answers with agreeing calls full text similarity and no refusal', () => {
    const call = [toolCall('lookup', '{"id": 7}')];
    const comparison = compareResponses(
      responseEvent({ content: null, toolCalls: call, finishReason: 'tool_calls' }),
      responseEvent({ arm: 'cand', content: '', toolCalls: call, finishReason: 'tool_calls' }),
    );
    assert.equal(comparison.toolCallAgreement, true);
    assert.equal(comparison.editSimilarity, 1);
    assert.deepEqual(comparison.refusal, { stable: false, candidate: false });
    assert.deepEqual(comparison.jsonValid, { stable: null, candidate: null });
  });
});

describe('normalizeText', () => {
  it('collapses whitespace, trims and case-folds, including ß versus SS', () => {
    assert.equal(normalizeText('\t Große\u00a0 Straße \n'), normalizeText('GROSSE STRASSE'));
  });
});
