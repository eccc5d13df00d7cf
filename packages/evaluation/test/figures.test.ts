import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationErrorCode, sideFigures } from '../src/index.js';
import { responseEvent } from './fixtures.js';

describe('sideFigures', () => {
  it('prices prompt and completion tokens per million', () => {
    const event = responseEvent({ usage: { prompt: 1_000, completion: 500 } });
    const figures = sideFigures(event, { inputPerMillion: 3, outputPerMillion: 15 });
    assert.equal(figures.costUsd, (1_000 * 3 + 500 * 15) / 1_000_000);
    assert.equal(figures.promptTokens, 1_000);
    assert.equal(figures.completionTokens, 500);
    assert.equal(figures.e2eMs, 400);
    assert.equal(figures.ttftMs, 50);
  });

  it('leaves the cost null without prices or without usage', () => {
    assert.equal(sideFigures(responseEvent()).costUsd, null);
    const noUsage = sideFigures(responseEvent({ usage: null }), { inputPerMillion: 3, outputPerMillion: 15 });
    assert.equal(noUsage.costUsd, null);
    assert.equal(noUsage.promptTokens, null);
  });

  it('rejects a negative price with the field name', () => {
    assert.throws(() => sideFigures(responseEvent(), { inputPerMillion: -1, outputPerMillion: 1 }), {
      code: EvaluationErrorCode.invalidPrices,
      message: /prices\.inputPerMillion must be/,
    });
  });
});
