import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ShadowConfigSchema } from '../src/index.js';

const parse = (candidate: Record<string, unknown>, experiment: Record<string, unknown> = {}) =>
  ShadowConfigSchema.safeParse({ experiment: { id: 'exp', candidates: [{ name: 'c', baseUrl: 'http://127.0.0.1:8001', ...candidate }], ...experiment } });

function assertIssue(parsed: ReturnType<typeof parse>, path: (string | number)[], message: RegExp): void {
  assert.ok(!parsed.success, 'rejected');
  const issue = parsed.error.issues.find((candidate) => candidate.path.join('.') === path.join('.'));
  assert.ok(issue !== undefined, `an issue at ${path.join('.')}: ${JSON.stringify(parsed.error.issues)}`);
  assert.match(issue.message, message);
}

describe('candidate timeouts', () => {
  it('default to a 5 s connect, 30 s first token, idle bound equal to the first-token one, 120 s total', () => {
    const parsed = parse({});
    assert.ok(parsed.success);
    assert.deepEqual(parsed.data.experiment?.candidates[0]?.timeouts, { connectMs: 5_000, firstTokenMs: 30_000, totalMs: 120_000 });
  });

  it('name the field when a deadline is not a positive whole number of milliseconds', () => {
    assertIssue(parse({ timeouts: { connectMs: 0 } }), ['experiment', 'candidates', 0, 'timeouts', 'connectMs'], />0|positive|too small/iu);
    assertIssue(parse({ timeouts: { idleMs: 1.5 } }), ['experiment', 'candidates', 0, 'timeouts', 'idleMs'], /int/iu);
    assertIssue(parse({ timeouts: { connectTimeout: 100 } }), ['experiment', 'candidates', 0, 'timeouts'], /connectTimeout/u);
  });
});

describe('max_tokens from the live answer', () => {
  it('defaults to 1.5 × the live answer with a minimum of 16 when given', () => {
    const parsed = parse({ transforms: { maxTokensFromStable: {} } });
    assert.ok(parsed.success);
    assert.deepEqual(parsed.data.experiment?.candidates[0]?.transforms.maxTokensFromStable, { factor: 1.5, minimum: 16 });
  });

  it('refuses a factor below 1, and a minimum above the fixed cap, naming the field', () => {
    assertIssue(parse({ transforms: { maxTokensFromStable: { factor: 0.5 } } }), ['experiment', 'candidates', 0, 'transforms', 'maxTokensFromStable', 'factor'], /must be >= 1/u);
    assertIssue(parse({ transforms: { maxTokensCap: 64, maxTokensFromStable: { minimum: 100 } } }), ['experiment', 'candidates', 0, 'transforms', 'maxTokensFromStable', 'minimum'], /<= maxTokensCap \(64\)/u);
  });
});

describe('budget', () => {
  it('refuses a cost budget for an arm without prices, naming the arm\'s prices', () => {
    assertIssue(parse({}, { budget: { maxCost: 10 } }), ['experiment', 'candidates', 0, 'prices'], /required with budget\.maxCost \(10\)/u);
    assert.ok(parse({ prices: { inputPerMillion: 1, outputPerMillion: 2 } }, { budget: { maxCost: 10 } }).success);
  });
});
