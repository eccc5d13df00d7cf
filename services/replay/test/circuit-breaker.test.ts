import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker } from '../src/circuit-breaker.js';

describe('the circuit breaker', () => {
  it('opens on the failure rate over its window, lets one probe through after openMs, and closes on a good probe', () => {
    const breaker = new CircuitBreaker({ failureRate: 0.5, window: 4, openMs: 1_000 });
    for (const ok of [true, false, false]) {
      assert.equal(breaker.allow(0), 'call');
      breaker.record(ok, 0);
    }
    assert.equal(breaker.state, 'closed', 'three calls are fewer than the window');
    breaker.record(false, 0);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.allow(500), null);
    assert.equal(breaker.allow(1_000), 'probe');
    assert.equal(breaker.allow(1_001), null, 'only one probe at a time');
    breaker.record(true, 1_002, 'probe');
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.allow(1_003), 'call');
  });

  it('opens again when the probe fails', () => {
    const breaker = new CircuitBreaker({ failureRate: 1, window: 1, openMs: 100 });
    breaker.record(false, 0);
    assert.equal(breaker.allow(100), 'probe');
    breaker.record(false, 100, 'probe');
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.allow(150), null);
    assert.equal(breaker.allow(200), 'probe');
  });

  it('lets only the probe decide: results of calls made before it opened are not taken for the probe', () => {
    const breaker = new CircuitBreaker({ failureRate: 1, window: 1, openMs: 100 });
    breaker.record(false, 0);
    assert.equal(breaker.allow(100), 'probe');
    breaker.record(true, 110);
    assert.equal(breaker.state, 'half_open', 'a late success of an older call does not close it');
    breaker.record(false, 120);
    assert.equal(breaker.state, 'half_open', 'nor does a late failure reopen it');
    assert.equal(breaker.allow(130), null, 'the probe is still out');
    breaker.record(true, 140, 'probe');
    assert.equal(breaker.state, 'closed');
  });

  it('lets the next call probe when the probe ended without a verdict', () => {
    const breaker = new CircuitBreaker({ failureRate: 1, window: 1, openMs: 100 });
    breaker.record(false, 0);
    assert.equal(breaker.allow(100), 'probe');
    assert.equal(breaker.allow(101), null);
    breaker.abandonProbe();
    assert.equal(breaker.allow(102), 'probe', 'not half-open and shedding for ever');
  });
});
