import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PENDING } from '@shadow-replay/contracts';
import { RateLimiter, waitFor } from '@shadow-replay/platform';
import type { ReplayService } from '@shadow-replay/replay';
import type { SimArrival } from '@shadow-replay/sim';
import { requestEvent } from './support/events.js';
import { candidateAnswers, ids, setupReplay } from './support/replay-setup.js';

const requestIdOf = (arrival: SimArrival) => String(arrival.headers['x-shadow-request-id']);

async function status(replay: ReplayService): Promise<{ circuit: string; budgetSpent: { requests: number } }> {
  const body = (await (await fetch(`${replay.httpUrl}/admin/status`)).json()) as { arms: { circuit: string; budgetSpent: { requests: number } }[] };
  const arm = body.arms[0];
  assert.ok(arm !== undefined);
  return arm;
}

describe('retries, the circuit and the request budget', () => {
  it('sends no retry once the circuit has opened: a request waiting to retry ends with the failure it has', async (t) => {
    const arrivals: SimArrival[] = [];
    // Every call is refused with Retry-After: 1; calls are 250 ms apart, so the requests reach their
    // third (last) call one after another and the third of them to fail for good opens the circuit.
    const s = await setupReplay(
      t,
      { rate: { rps: 4, concurrency: 10 }, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5_000 }, circuit: { window: 3, failureRate: 0.5, openMs: 600_000 } },
      { profile: 'fast', overrides: { rateLimitRate: 1, retryAfterSeconds: 1 }, onChat: (arrival) => arrivals.push(arrival) },
    );
    await s.produce(ids(6).map((id) => requestEvent(id)));
    const replay = await s.startReplay();
    const counts = await s.settled(6);
    assert.equal(counts.candidate_error, 6, 'every request ends with its last failure');
    assert.equal((await status(replay)).circuit, 'open');

    const calls = new Map<string, SimArrival[]>();
    for (const arrival of arrivals) calls.set(requestIdOf(arrival), [...(calls.get(requestIdOf(arrival)) ?? []), arrival]);
    const lastCalls = [...calls.values()].filter((list) => list.length === 3).map((list) => list[2]?.receivedAt ?? 0).toSorted((a, b) => a - b);
    const openedAt = lastCalls[2];
    assert.ok(openedAt !== undefined, `three requests failed for good: ${JSON.stringify([...calls].map(([id, list]) => [id, list.length]))}`);
    const after = arrivals.filter((arrival) => arrival.receivedAt > openedAt + 150);
    assert.deepEqual(after.map(requestIdOf), [], 'no call after the circuit opened');
    assert.ok([...calls.values()].some((list) => list.length < 3), 'some requests were waiting to retry when it opened');
  });

  it('never stays half-open for ever: a probe is one call, and a probe that gave no verdict lets the next call probe', async (t) => {
    // A retry's wait for its slot fails (as when Redis is lost) while the switch is on.
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with its instance below, and put back after the test
    const original = RateLimiter.prototype.acquire;
    let failRetries = false;
    RateLimiter.prototype.acquire = function (this: RateLimiter, tokens: number, signal?: AbortSignal) {
      // Retries wait without the record's signal (only a first call can be handed over).
      if (failRetries && signal === undefined) return Promise.reject(new Error('a retry could not take its slot'));
      return original.call(this, tokens, signal);
    };
    t.after(() => {
      RateLimiter.prototype.acquire = original;
    });
    const arrivals: SimArrival[] = [];
    const s = await setupReplay(
      t,
      { rate: { rps: 5, concurrency: 1 }, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, circuit: { window: 2, failureRate: 0.5, openMs: 500 } },
      { profile: 'fast', overrides: { errorRate: 1 }, onChat: (arrival) => arrivals.push(arrival) },
    );
    await s.produce(ids(2, 'a').map((id) => requestEvent(id)));
    const replay = await s.startReplay();
    await s.settled(2);
    assert.equal((await status(replay)).circuit, 'open');

    failRetries = true;
    await s.produce(ids(15, 'b').map((id) => requestEvent(id)));
    // The first probe fails (a 5xx, retryable); then the candidate recovers.
    await waitFor(() => arrivals.some((arrival) => requestIdOf(arrival).startsWith('b')), { timeoutMs: 30_000, what: 'the first probe' });
    s.sim.setProfile({ errorRate: 0 });
    await waitFor(async () => [...(await candidateAnswers(s)).values()].some((answer) => answer.outcome === 'ok'), { timeoutMs: 30_000, what: 'a call answered once the candidate recovered' });
    assert.equal((await status(replay)).circuit, 'closed');
    const probe = arrivals.filter((arrival) => requestIdOf(arrival).startsWith('b'))[0];
    assert.equal(arrivals.filter((arrival) => probe !== undefined && requestIdOf(arrival) === requestIdOf(probe)).length, 1, 'the failed probe was not retried');
  });

  it('counts retries against the request budget across two instances: the candidate never sees more calls than it allows', async (t) => {
    const arrivals: SimArrival[] = [];
    const maxRequests = 20;
    const s = await setupReplay(
      t,
      { rate: { concurrency: 4 }, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 10 }, circuit: { window: 10_000 } },
      { profile: 'fast', overrides: { errorRate: 0.5, faultSeed: 'budget-retries' }, onChat: (arrival) => arrivals.push(arrival) },
      { budget: { maxRequests } },
    );
    // Requests are admitted as they are read: the first eight leave room in the budget for their retries.
    await s.produce(ids(8, 'a').map((id) => requestEvent(id)));
    const [first] = await Promise.all([s.startReplay(), s.startReplay()]);
    await waitFor(async () => (await candidateAnswers(s)).size === 8, { timeoutMs: 60_000, what: 'the first eight answered' });
    await s.produce(ids(32, 'b').map((id) => requestEvent(id)));
    await waitFor(
      async () => {
        const counts = await s.outcomes.counts(s.experimentId, 'cand');
        const answers = await candidateAnswers(s);
        return counts.consumed === 40 && counts.shed_budget + counts.candidate_error + counts[PENDING] === 40 && answers.size === counts.candidate_error + counts[PENDING];
      },
      { timeoutMs: 60_000, what: 'every request shed or answered' },
    );
    const retried = arrivals.length - new Set(arrivals.map(requestIdOf)).size;
    assert.ok(retried > 0, 'some calls were retries');
    assert.equal(arrivals.length, maxRequests, `${arrivals.length} calls, ${retried} of them retries, for a budget of ${maxRequests}`);
    assert.equal((await status(first)).budgetSpent.requests, maxRequests);
    assert.ok((await s.outcomes.counts(s.experimentId, 'cand')).shed_budget > 0);
  });
});
