import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ShadowConfigSchema } from '../src/index.js';

const parse = (rate: Record<string, unknown>) =>
  ShadowConfigSchema.safeParse({ experiment: { id: 'exp', candidates: [{ name: 'c', baseUrl: 'http://127.0.0.1:8001', rate }] } });

describe('candidate rate: adaptive pacing', () => {
  it('fills the defaults and keeps rps as the ceiling', () => {
    const parsed = parse({ rps: 10, adaptive: { targetLatencyMs: 2000 } });
    assert.ok(parsed.success);
    const adaptive = parsed.data.experiment?.candidates[0]?.rate.adaptive;
    assert.deepEqual(adaptive, { minRps: 0.2, targetLatencyMs: 2000, latencyMetric: 'ttft', decreaseFactor: 0.5, cooldownMs: 2000, increaseEveryMs: 2000 });
    assert.equal(parsed.data.experiment?.candidates[0]?.rate.rps, 10);
  });

  it('is absent by default: fixed pace', () => {
    const parsed = parse({ rps: 10 });
    assert.ok(parsed.success);
    assert.equal(parsed.data.experiment?.candidates[0]?.rate.adaptive, undefined);
  });

  it('names the field and what was expected when the settings cannot work', () => {
    const cases: [Record<string, unknown>, (string | number)[], RegExp][] = [
      [{ adaptive: {} }, ['rps'], /required with adaptive pacing/u],
      [{ rps: 2, adaptive: { minRps: 5 } }, ['adaptive', 'minRps'], /must be <= rps \(2\)/u],
      [{ rps: 2, adaptive: { startRps: 3 } }, ['adaptive', 'startRps'], /between minRps/u],
      [{ rps: 2, adaptive: { decreaseFactor: 1 } }, ['adaptive', 'decreaseFactor'], /1/u],
      [{ rps: 2, adaptive: { latencyMetric: 'tpot' } }, ['adaptive', 'latencyMetric'], /ttft|e2e/u],
    ];
    for (const [rate, path, message] of cases) {
      const parsed = parse(rate);
      assert.ok(!parsed.success, JSON.stringify(rate));
      const issue = parsed.error.issues[0];
      assert.deepEqual(issue?.path, ['experiment', 'candidates', 0, 'rate', ...path], JSON.stringify(rate));
      assert.match(issue?.message ?? '', message);
    }
  });
});
