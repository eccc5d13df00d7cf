import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Outcome, PENDING } from '@shadow-replay/contracts';
import { JoinState, encodeSide, parseSide, type StoredSide } from '@shadow-replay/join';
import { OutcomeStore, PlatformErrorCode, RedisScript, waitFor } from '@shadow-replay/platform';
import { testScope } from './support/harness.js';

function scopeRedis(t: TestContext) {
  const scope = testScope(t, () => ({}));
  return { redis: scope.redis, prefix: scope.config.redis.keyPrefix };
}

const side = (offset: string): StoredSide => ({ event: `{"offset":"${offset}"}`, topic: 't', partition: 0, offset });

describe('outcome accounting in Redis', () => {
  it('counts a redelivered request once and never reopens a settled one', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const store = new OutcomeStore({ redis, keyPrefix: prefix });
    assert.equal(await store.consume('e', 'a', 'r1'), '');
    assert.equal(await store.consume('e', 'a', 'r1'), PENDING, 'a redelivery sees the earlier state');
    assert.equal(await store.settle('e', 'a', 'r1', Outcome.evaluated), PENDING);
    assert.equal(await store.settle('e', 'a', 'r1', Outcome.evaluated), Outcome.evaluated);
    assert.equal(await store.settle('e', 'a', 'r1', Outcome.evalFailed), Outcome.evaluated, 'a final outcome is not overwritten');
    assert.equal(await store.consume('e', 'a', 'r1'), Outcome.evaluated);
    const counts = await store.counts('e', 'a');
    assert.equal(counts.consumed, 1);
    assert.equal(counts.evaluated, 1);
    assert.equal(counts[PENDING], 0);
    assert.equal(counts.eval_failed, 0);
  });

  it('keeps the table balanced when many concurrent updates race for the same requests', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const store = new OutcomeStore({ redis, keyPrefix: prefix });
    const ids = Array.from({ length: 200 }, (_, i) => `r${i}`);
    await Promise.all([...ids, ...ids].map((id) => store.consume('e', 'a', id)));
    await Promise.all(ids.flatMap((id, i) => [store.settle('e', 'a', id, i % 2 ? Outcome.evaluated : Outcome.candidateError), store.settle('e', 'a', id, Outcome.evaluated)]));
    const counts = await store.counts('e', 'a');
    assert.equal(counts.consumed, 200);
    assert.equal(counts[PENDING], 0);
    assert.equal(counts.evaluated + counts.candidate_error, 200);
    assert.deepEqual(await store.arms('e'), ['a']);
  });

  it('counts an outcome for a request it never saw consumed, so the anomaly stays visible', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const store = new OutcomeStore({ redis, keyPrefix: prefix });
    await store.settle('e', 'a', 'ghost', Outcome.stableMissing);
    const counts = await store.counts('e', 'a');
    assert.equal(counts.consumed, 1);
    assert.equal(counts.stable_missing, 1);
  });

  it("counts each request in the minute of its occurredAt too, through every later move, under concurrent updates", async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const store = new OutcomeStore({ redis, keyPrefix: prefix });
    const minute = 1_700_000_040_000; // a minute boundary
    const ids = Array.from({ length: 120 }, (_, i) => `r${i}`);
    // 40 per minute over three minutes; every request consumed twice (a redelivery), then settled twice, racing.
    const at = (i: number) => minute + Math.floor(i / 40) * 60_000 + (i % 40) * 1_000;
    await Promise.all([...ids, ...ids].map((id) => store.consume('e', 'a', id, PENDING, at(Number(id.slice(1))))));
    await store.consume('e', 'a', 'no-time');
    await Promise.all(ids.flatMap((id, i) => [store.settle('e', 'a', id, i % 4 === 0 ? Outcome.candidateError : Outcome.evaluated), store.settle('e', 'a', id, Outcome.evaluated)]));
    const second = (await store.windowCounts('e', minute + 60_000, minute + 120_000)).a!;
    assert.equal(second.consumed, 40);
    assert.equal(second[PENDING], 0);
    assert.equal(second.evaluated + second.candidate_error, 40);
    const all = (await store.windowCounts('e', minute, minute + 180_000)).a!;
    const totals = await store.counts('e', 'a');
    assert.equal(all.consumed, 120);
    assert.equal(all.evaluated, totals.evaluated);
    assert.equal(totals.consumed, 121, 'a request consumed without a time counts in the totals only');
    assert.equal((await store.windowCounts('e', minute + 180_000, minute + 240_000)).a!.consumed, 0);
    await assert.rejects(store.windowCounts('e', minute + 1, minute + 60_000), { code: PlatformErrorCode.outcomeWindowInvalid });
  });

  it('counts the reason of an outcome once per request, with the outcome, and keeps it out of the outcome table', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const store = new OutcomeStore({ redis, keyPrefix: prefix });
    for (const id of ['r1', 'r2', 'r3']) await store.consume('e', 'a', id);
    await store.settle('e', 'a', 'r1', Outcome.shedBudget, 'cost');
    await store.settle('e', 'a', 'r1', Outcome.shedBudget, 'cost');
    await store.settle('e', 'a', 'r2', Outcome.shedBudget, 'end_time');
    await store.settle('e', 'a', 'r2', Outcome.shedBudget, 'cost');
    await store.settle('e', 'a', 'r3', Outcome.candidateError);
    assert.deepEqual(await store.reasons('e', 'a'), { shed_budget: { cost: 1, end_time: 1 } });
    const counts = await store.counts('e', 'a');
    assert.equal(counts.shed_budget, 2);
    assert.equal(counts.consumed, 3);
    assert.equal(Object.keys(counts).some((name) => name.includes('/')), false);
  });
});

describe('join state in Redis', () => {
  it('pairs a candidate that came first with the stable side that came later, once', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const state = new JoinState({ redis, keyPrefix: prefix, windowMs: 60_000 });
    assert.deepEqual(await state.offerCandidate('r1', 'e', 'a', side('c1')), { state: 'waiting' });
    const waiting = await state.offerStable('r1', side('s1'));
    assert.deepEqual(waiting, [{ experimentId: 'e', arm: 'a', side: side('c1') }]);
    await state.markDone('r1', 'e', 'a');
    assert.deepEqual(await state.offerStable('r1', side('s1')), [], 'a redelivered stable side pairs nothing again');
    assert.deepEqual(await state.offerCandidate('r1', 'e', 'a', side('c1')), { state: 'done' }, 'a redelivered candidate is recognised');
  });

  it('pairs a candidate that came after the stable side at once, and keeps arms apart', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const state = new JoinState({ redis, keyPrefix: prefix, windowMs: 60_000 });
    assert.deepEqual(await state.offerStable('r2', side('s2')), []);
    assert.deepEqual(await state.offerCandidate('r2', 'e', 'a', side('c2')), { state: 'paired', stable: side('s2') });
    await state.markDone('r2', 'e', 'a');
    assert.deepEqual(await state.offerCandidate('r2', 'e', 'b', side('c3')), { state: 'paired', stable: side('s2') }, 'another arm of the same request still pairs');
  });

  it('hands an expired candidate to exactly one of several sweepers', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const state = new JoinState({ redis, keyPrefix: prefix, windowMs: 1 });
    for (let i = 0; i < 20; i++) await state.offerCandidate(`x${i}`, 'e', 'a', side(String(i)));
    const later = Date.now() + 1_000;
    const claims = await Promise.all([state.expire(later), state.expire(later), state.expire(later)]);
    const claimed = claims.flat().map((entry) => entry.requestId).sort();
    assert.equal(claimed.length, 20);
    assert.equal(new Set(claimed).size, 20);
    assert.deepEqual(await state.offerStable('x0', side('late')), [], 'a stable side arriving after expiry pairs nothing');
  });

  it('stores sides as they came (JSON text with escapes, quotes and emoji, the size marker of a refused side) and still reads sides stored as JSON', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    const state = new JoinState({ redis, keyPrefix: prefix, windowMs: 60_000 });
    const odd: StoredSide = { event: '{"text":"a \\u0000 \\"quoted\\" line\\nbreak","emoji":"\u{1F600}"}', topic: 'llm.responses.stable', partition: 11, offset: '9007199254740993' };
    assert.deepEqual(encodeSide(odd).length < JSON.stringify(odd).length, true, 'no escaping of the event text');
    assert.deepEqual(parseSide(encodeSide(odd)), odd);
    const refused: StoredSide = { event: '', topic: 't', partition: 0, offset: '7', tooLargeBytes: 2_000_000 };
    assert.deepEqual(parseSide(encodeSide(refused)), refused);
    await state.offerStable('r3', odd);
    assert.deepEqual(await state.offerCandidate('r3', 'e', 'a', side('c3')), { state: 'paired', stable: odd });
    // A side written by the previous version (a JSON object), e.g. while a join is being upgraded.
    await redis.set(`${prefix}:join:{r4}:stable`, JSON.stringify(side('s4')));
    assert.deepEqual(await state.offerCandidate('r4', 'e', 'a', side('c4')), { state: 'paired', stable: side('s4') });
  });

  it('drops a deadline left by a delivery that waited once the pair is done without it', async (t) => {
    const { redis, prefix } = scopeRedis(t);
    // A window long enough that the stable side cannot expire mid-test; the sweep looks ahead.
    const state = new JoinState({ redis, keyPrefix: prefix, windowMs: 60_000 });
    assert.deepEqual(await state.offerCandidate('r5', 'e', 'a', side('c5')), { state: 'waiting' });
    await state.offerStable('r5', side('s5'));
    // The stable handler died before the hand-off; the redelivered candidate pairs on arrival.
    assert.deepEqual(await state.offerCandidate('r5', 'e', 'a', side('c5')), { state: 'paired', stable: side('s5') });
    await state.markDone('r5', 'e', 'a', false);
    assert.equal(await redis.zcard(`${prefix}:join:deadlines`), 1, 'the deadline is still there');
    assert.deepEqual(await state.expire(Date.now() + 120_000), [], 'a done pair does not expire');
    assert.equal(await redis.zcard(`${prefix}:join:deadlines`), 0, 'and its deadline is gone');
  });
});

describe('Lua scripts sent by SHA', () => {
  it('load themselves again when Redis forgot them (restart or SCRIPT FLUSH)', async (t) => {
    const { redis } = scopeRedis(t);
    const script = new RedisScript(`return {KEYS[1], ARGV[1], '${t.name.length}-${Date.now()}'}`);
    assert.deepEqual(await redis.script('EXISTS', script.sha), [0]);
    const first = await script.run(redis, 1, 'k', 'v');
    assert.deepEqual((first as string[]).slice(0, 2), ['k', 'v']);
    assert.deepEqual(await redis.script('EXISTS', script.sha), [1], 'the first call loaded it');
    assert.deepEqual(await script.run(redis, 1, 'k2', 'v2'), ['k2', 'v2', (first as string[])[2]]);
    await redis.script('FLUSH');
    assert.deepEqual(await script.run(redis, 1, 'k3', 'v3'), ['k3', 'v3', (first as string[])[2]], 'NOSCRIPT is answered by sending the text');
    await assert.rejects(new RedisScript('return redis.call("NO_SUCH_COMMAND")').run(redis, 0), /Unknown Redis command|unknown command/i, 'other script errors are not swallowed');
  });
});

describe('shared concurrency slots', () => {
  it('are taken over once a dead holder\'s lease has passed, and kept past the lease by a live holder that renews', async (t) => {
    const { RateLimiter } = await import('@shadow-replay/platform');
    const { redis, prefix } = scopeRedis(t);
    const key = `${prefix}:rate:test`;
    // A holder that died without releasing: a slot whose lease has run out and nobody renews.
    await redis.zadd(`${key}:inflight`, 1, 'dead-instance-1');
    const limiter = new RateLimiter({ redis, key, limits: { concurrency: 1 }, leaseMs: 300 });
    const release = await limiter.acquire(1);
    assert.deepEqual(await redis.zrange(`${key}:inflight`, 0, -1), [(await redis.zrange(`${key}:inflight`, 0, 0))[0]]);
    assert.ok(!(await redis.zrange(`${key}:inflight`, 0, -1)).includes('dead-instance-1'), 'the dead holder lost its slot');
    // Three leases later the live holder still holds its slot, renewed.
    const until = Date.now() + 900;
    await waitFor(() => Date.now() >= until, { timeoutMs: 2_000, what: 'three leases to pass' });
    const [member, score] = await redis.zrange(`${key}:inflight`, 0, 0, 'WITHSCORES');
    assert.ok(member !== undefined && Number(score) > Date.now() - 50, 'the lease was renewed');
    await release();
    assert.equal(await redis.zcard(`${key}:inflight`), 0);
  });

  it('pace at any rate (an interval that is not a whole millisecond), give the slot back when a wait is abandoned, and hold off for a Retry-After', async (t) => {
    const { RateLimiter } = await import('@shadow-replay/platform');
    const { redis, prefix } = scopeRedis(t);
    const key = `${prefix}:rate:pace`;
    const limiter = new RateLimiter({ redis, key, limits: { rps: 6, concurrency: 1 } });
    const started = Date.now();
    for (let i = 0; i < 4; i++) await (await limiter.acquire(1))();
    // Slots at 0, 1/6, 2/6 and 3/6 s.
    assert.ok(Date.now() - started >= 480, `four calls at 6/s took ${Date.now() - started} ms`);
    const held = await limiter.acquire(1);
    const abandon = new AbortController();
    const waiting = limiter.acquire(1, abandon.signal);
    abandon.abort(new Error('handed over'));
    await assert.rejects(waiting, /handed over/u);
    await held();
    assert.equal(await redis.zcard(`${key}:inflight`), 0, 'no slot left behind by the abandoned wait');
    // A paced wait abandoned after the slot was taken gives it back too.
    limiter.setRps(0.5);
    await (await limiter.acquire(1))();
    const paced = new AbortController();
    const pacedWait = limiter.acquire(1, paced.signal);
    await waitFor(async () => (await redis.zcard(`${key}:inflight`)) === 1, { timeoutMs: 2_000, what: 'the paced wait to hold its slot' });
    paced.abort(new Error('stopping'));
    await assert.rejects(pacedWait, /stopping/u);
    assert.equal(await redis.zcard(`${key}:inflight`), 0);
    // Retry-After for the whole arm: nothing is booked sooner.
    limiter.setRps(1000);
    await limiter.holdOff(400);
    const heldFrom = Date.now();
    await (await limiter.acquire(1))();
    assert.ok(Date.now() - heldFrom >= 390, `the next call waited ${Date.now() - heldFrom} ms of a 400 ms hold-off`);
  });
});
