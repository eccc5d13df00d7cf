import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODE_FORMAT } from '@shadow-replay/contracts';
import { PlatformErrorCode } from '../src/errors.js';

describe('platform error codes', () => {
  it('are upper snake case with the PLATFORM_ prefix and unique', () => {
    const codes = Object.values(PlatformErrorCode);
    for (const code of codes) {
      assert.match(code, ERROR_CODE_FORMAT);
      assert.ok(code.startsWith('PLATFORM_'), code);
    }
    assert.equal(new Set(codes).size, codes.length);
  });
});
