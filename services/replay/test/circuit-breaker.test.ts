import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker } from '../src/circuit-breaker.js';

describe('the circuit breaker', () => {
  it('opens on the failure rate over its window, lets one probe through after openMs, and closes on a good probe', () => {
    const breaker = new CircuitBreaker({ failureRate: 0.5, window: 4, openMs: 1_000 });
    for (const ok of [true, false, false]) {
      assert.equal(breaker.allow(0), true);
      breaker.record(ok, 0);
    }
    assert.equal(breaker.state, 'closed', 'three calls are fewer than the window');
    breaker.record(false, 0);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.allow(500), false);
    assert.equal(breaker.allow(1_000), true, 'the probe');
    assert.equal(breaker.allow(1_001), false, 'only one probe at a time');
    breaker.record(true, 1_002);
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.allow(1_003), true);
  });

  it('opens again when the probe fails', () => {
    const breaker = new CircuitBreaker({ failureRate: 1, window: 1, openMs: 100 });
    breaker.record(false, 0);
    assert.equal(breaker.allow(100), true);
    breaker.record(false, 100);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.allow(150), false);
    assert.equal(breaker.allow(200), true);
  });
});
