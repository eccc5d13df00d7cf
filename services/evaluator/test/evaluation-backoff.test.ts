import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JudgeUnavailableError, evaluationBackoffMs } from '../src/index.js';

const exponential = { type: 'exponential', delayMs: 1_000, jitter: 0 } as const;

describe('the wait between runs of a pair’s evaluation', () => {
  it('doubles from delayMs after each failed run, or stays at delayMs when fixed', () => {
    assert.deepEqual([1, 2, 3].map((attemptsMade) => evaluationBackoffMs(attemptsMade, exponential)), [1_000, 2_000, 4_000]);
    assert.deepEqual([1, 2, 3].map((attemptsMade) => evaluationBackoffMs(attemptsMade, { ...exponential, type: 'fixed' })), [1_000, 1_000, 1_000]);
  });

  it('draws the jittered fraction of each wait at random, never more than the full wait', () => {
    const backoff = { ...exponential, jitter: 0.5 };
    assert.equal(evaluationBackoffMs(2, backoff, undefined, () => 0), 2_000);
    assert.equal(evaluationBackoffMs(2, backoff, undefined, () => 0.999_999), 1_000);
    assert.equal(evaluationBackoffMs(2, backoff, undefined, () => 0.5), 1_500);
  });

  it('waits at least the judge’s Retry-After carried by the failed run', () => {
    assert.equal(evaluationBackoffMs(1, exponential, new JudgeUnavailableError('429', 30_000)), 30_000);
    assert.equal(evaluationBackoffMs(1, exponential, new JudgeUnavailableError('429', 10)), 1_000);
    assert.equal(evaluationBackoffMs(1, exponential, new JudgeUnavailableError('500', null)), 1_000);
    assert.equal(evaluationBackoffMs(1, exponential, new Error('kafka down')), 1_000);
  });

  it('reports a judge that stays unavailable with its code first, as the failure metric reads it', () => {
    const error = new JudgeUnavailableError('the stable_first call failed after 3 attempt(s): http_status: HTTP 503', null);
    assert.equal(error.code, 'EVALUATOR_JUDGE_UNAVAILABLE');
    assert.equal(error.retryable, true);
    assert.match(error.message, /^EVALUATOR_JUDGE_UNAVAILABLE: the stable_first call/);
  });
});
