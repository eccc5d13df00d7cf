import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareResponses, normalizeText, toolCallsAgree } from '../src/index.js';
import { responseEvent, toolCall } from './fixtures.js';

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
  });

  it('matches nothing when a side has no response', () => {
    const comparison = compareResponses(responseEvent(), responseEvent({ arm: 'cand', outcome: 'error' }));
    assert.equal(comparison.exactMatch, false);
    assert.equal(comparison.normalizedMatch, false);
    assert.equal(comparison.lengthRatio, null);
    assert.equal(comparison.finishReasonAgreement, false);
  });
});

describe('normalizeText', () => {
  it('collapses whitespace, trims and case-folds, including ß versus SS', () => {
    assert.equal(normalizeText('\t Große\u00a0 Straße \n'), normalizeText('GROSSE STRASSE'));
  });
});
