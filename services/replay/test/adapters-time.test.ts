import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toEpochMs } from '../src/adapters/time.js';

describe('timestamp conversion', () => {
  const instant = Date.UTC(2024, 4, 1, 12, 0, 0); // 2024-05-01T12:00:00Z

  it('reads epoch seconds, milliseconds, microseconds and nanoseconds by magnitude', () => {
    assert.deepEqual(toEpochMs(instant / 1000), { ok: true, ms: instant });
    assert.deepEqual(toEpochMs(instant / 1000 + 0.25), { ok: true, ms: instant + 250 });
    assert.deepEqual(toEpochMs(instant), { ok: true, ms: instant });
    assert.deepEqual(toEpochMs(instant * 1000 + 123), { ok: true, ms: instant });
    assert.deepEqual(toEpochMs(BigInt(instant) * 1_000_000n + 7n), { ok: true, ms: instant });
    assert.deepEqual(toEpochMs(String(instant / 1000)), { ok: true, ms: instant }, 'digits in a string count as a number');
  });

  it('reads ISO 8601 with Z, an offset with or without colon, a space separator and any fraction', () => {
    for (const text of ['2024-05-01T12:00:00Z', '2024-05-01T12:00:00.000z', '2024-05-01T14:00:00+02:00', '2024-05-01 14:00:00+0200', '2024-05-01T08:00-04', '2024-05-01T12:00:00.000000000Z']) {
      assert.deepEqual(toEpochMs(text), { ok: true, ms: instant }, text);
    }
    assert.deepEqual(toEpochMs('2024-05-01T12:00:00.123456789Z'), { ok: true, ms: instant + 123 });
  });

  it('refuses a time without a zone, an impossible date and words, saying why', () => {
    const zoneless = toEpochMs('2024-05-01T12:00:00');
    assert.ok(!zoneless.ok && /no time zone/.test(zoneless.problem));
    const impossible = toEpochMs('2025-02-30T00:00:00Z');
    assert.ok(!impossible.ok && /not a real date/.test(impossible.problem));
    const word = toEpochMs('yesterday');
    assert.ok(!word.ok && /not epoch seconds\/milliseconds or an ISO 8601 time/.test(word.problem));
    const before1970 = toEpochMs(-5);
    assert.ok(!before1970.ok && /before 1970/.test(before1970.problem));
    for (const value of [true, null, {}, [], Number.NaN]) assert.equal(toEpochMs(value).ok, false, JSON.stringify(value));
  });

  it('uses an explicit unit instead of guessing', () => {
    assert.deepEqual(toEpochMs(5, 'ms'), { ok: true, ms: 5 }, 'a small millisecond value that auto would read as seconds');
    assert.deepEqual(toEpochMs('5', 's'), { ok: true, ms: 5000 });
    assert.deepEqual(toEpochMs(instant * 1000, 'us'), { ok: true, ms: instant });
    assert.deepEqual(toEpochMs(instant * 1e6, 'ns'), { ok: true, ms: instant });
    assert.equal(toEpochMs(instant, 'iso').ok, false);
    assert.equal(toEpochMs('2024-05-01T12:00:00Z', 'ms').ok, false);
  });
});
