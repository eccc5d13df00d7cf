import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODE_FORMAT, ShadowError } from '@shadow-replay/contracts';
import { EvaluationError, EvaluationErrorCode } from '../src/index.js';

describe('evaluation errors', () => {
  it('uses well-formed codes with the EVAL_ prefix', () => {
    for (const code of Object.values(EvaluationErrorCode)) {
      assert.match(code, ERROR_CODE_FORMAT);
      assert.ok(code.startsWith('EVAL_'), code);
    }
  });

  it('is a ShadowError carrying its code, retryable flag and cause', () => {
    const cause = new Error('root');
    const error = new EvaluationError(EvaluationErrorCode.invalidInput, 'bad', { cause });
    assert.ok(error instanceof ShadowError);
    assert.equal(error.code, 'EVAL_INVALID_INPUT');
    assert.equal(error.retryable, false);
    assert.equal(error.cause, cause);
    assert.equal(error.name, 'EvaluationError');
  });
});
