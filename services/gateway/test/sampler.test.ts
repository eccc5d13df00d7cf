import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Sampler, samplingFraction } from '../src/sampler.js';

const base = { rate: 0.1, salt: 'shadow-replay', routes: ['/v1/chat/completions'], optOutHeader: 'x-shadow-opt-out' };
const input = (requestId: string, headers: Record<string, string> = {}) => ({ requestId, route: '/v1/chat/completions', headers });

describe('gateway sampling', () => {
  it('gives the same request the same decision every time, across sampler instances', () => {
    const a = new Sampler(base);
    const b = new Sampler(base);
    for (let i = 0; i < 1000; i++) assert.deepEqual(a.decide(input(`r${i}`)), b.decide(input(`r${i}`)));
  });

  it('publishes the configured fraction of 100k request ids within ±1% of the rate', () => {
    for (const rate of [0.01, 0.1, 0.5, 0.9]) {
      const sampler = new Sampler({ ...base, rate });
      let published = 0;
      for (let i = 0; i < 100_000; i++) if (sampler.decide(input(`request-${i}`)).publish) published++;
      const fraction = published / 100_000;
      assert.ok(Math.abs(fraction - rate) <= 0.01 * Math.max(rate, 0.1), `rate ${rate}: published ${fraction}`);
    }
  });

  it('shadows a conversation whole when keyed by a header, and records the key', () => {
    const sampler = new Sampler({ ...base, rate: 0.5, keyHeader: 'x-conversation-id' });
    for (let c = 0; c < 50; c++) {
      const decisions = new Set(Array.from({ length: 20 }, (_, i) => sampler.decide(input(`c${c}-r${i}`, { 'x-conversation-id': `conv-${c}` })).publish));
      assert.equal(decisions.size, 1, `conversation ${c} is decided once for all its requests`);
    }
    const published = Array.from({ length: 200 }, (_, c) => sampler.decide(input(`x${c}`, { 'x-conversation-id': `conv-${c}` }))).find((result) => result.publish);
    assert.deepEqual(published?.publish && published.decision, { rate: 0.5, key: 'header:x-conversation-id', sampled: true });
  });

  it('draws another sample at the same rate when the salt changes', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => `r${i}`);
    const a = ids.filter((id) => samplingFraction('one', id) < 0.5);
    const b = ids.filter((id) => samplingFraction('two', id) < 0.5);
    assert.notDeepEqual(a, b);
  });

  it('honours the opt-out header, route and model filters, and a rate changed at runtime', () => {
    const sampler = new Sampler({ ...base, rate: 1, models: ['gpt-x'] });
    assert.deepEqual(sampler.decide(input('r', { 'x-shadow-opt-out': '1' })), { publish: false, reason: 'opt_out' });
    assert.equal(sampler.decide(input('r', { 'x-shadow-opt-out': 'false' })).publish, true);
    assert.equal(sampler.acceptsModel('gpt-x'), true);
    assert.equal(sampler.acceptsModel('other'), false);
    assert.equal(sampler.acceptsModel(undefined), false);
    assert.equal(new Sampler(base).acceptsModel(undefined), true, 'without sampling.models every model is shadowed');
    assert.deepEqual(sampler.decide({ ...input('r'), route: '/v1/completions' }), { publish: false, reason: 'route' });
    sampler.setRate(0);
    assert.deepEqual(sampler.decide(input('r')), { publish: false, reason: 'sampled_out' });
    assert.throws(() => sampler.setRate(1.5), /between 0 and 1/);
  });
});
