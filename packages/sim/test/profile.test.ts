import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createSimServer,
  isSimError,
  parseProfile,
  profiles,
  resolveProfile,
  SimErrorCode,
  type SimError,
} from '../src/index.js';

function invalid(run: () => unknown): SimError {
  try {
    run();
  } catch (error) {
    if (isSimError(error)) return error;
    throw error;
  }
  assert.fail('expected a SimError');
}

test('a bad profile value fails with an error that names the field path', () => {
  const error = invalid(() => createSimServer({ overrides: { ttftMs: { p99: -5 } } }));

  assert.equal(error.code, SimErrorCode.InvalidProfile);
  assert.equal(error.retryable, false);
  assert.match(error.message, /ttftMs\.p99/);
  assert.ok(error.issues.some((issue) => issue.path === 'ttftMs.p99'));
  assert.ok(error.cause !== undefined);
});

test('profile validation reports every bad field, unknown fields and over-full fault rates', () => {
  const fields = invalid(() => parseProfile({ divergence: 2, outputTokens: { min: 5 }, tokensPerSecnd: 3 }));
  const rates = invalid(() => parseProfile({ errorRate: 0.7, timeoutRate: 0.6 }));

  assert.deepEqual(fields.issues.map((issue) => issue.path).sort(), ['divergence', 'outputTokens.max', 'tokensPerSecnd']);
  assert.match(rates.message, /must be <= 1/);
});

test('named profiles resolve with their documented settings and unknown names are rejected', () => {
  assert.deepEqual(Object.keys(profiles).sort(), ['candidate', 'fast', 'flaky', 'judge', 'slow', 'stable']);
  assert.deepEqual(resolveProfile('stable').ttftMs, { median: 120, p99: 400 });
  assert.equal(resolveProfile('stable').tokensPerSecond, 60);
  assert.equal(resolveProfile('candidate').baseSeed, 'stable');
  assert.equal(resolveProfile('candidate').divergence, 0.1);
  assert.equal(resolveProfile('fast').timeScale, 0);
  assert.equal(resolveProfile('slow').ttftMs.median, 2000);
  assert.equal(resolveProfile('flaky').errorRate, 0.1);
  assert.equal(resolveProfile('flaky').rateLimitRate, 0.05);
  assert.equal(resolveProfile('judge').judge?.positionBias, 0);
  assert.equal(invalid(() => resolveProfile('gpt-5')).code, SimErrorCode.UnknownProfile);
});
