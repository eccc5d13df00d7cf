import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Outcome, PENDING, ResponseEventSchema, decodeEvent } from '@shadow-replay/contracts';
import { waitFor } from '@shadow-replay/platform';
import type { ReplayService } from '@shadow-replay/replay';
import type { SimArrival } from '@shadow-replay/sim';
import { requestEvent } from './support/events.js';
import { answered, ids, setupReplay as setup } from './support/replay-setup.js';

describe('replay rate control, budgets and protection of the candidate', () => {
  it('holds one requests-per-second limit across two replay instances, with no second above it', async (t) => {
    const s = await setup(t, { rate: { rps: 20, concurrency: 50 } });
    await s.produce(ids(60).map((id) => requestEvent(id)));
    await Promise.all([s.startReplay(), s.startReplay()]);
    await answered(s, 60);
    const stats = s.sim.stats();
    const busy = stats.arrivals.filter((second) => second.count > 0);
    const seconds = busy.length;
    // 60 calls at 20/s need about 3 s; a burst would fit them in one or two.
    assert.ok(seconds >= 3, `60 calls spread over ${seconds} s`);
    for (const second of busy) assert.ok(second.count <= 22, `${second.count} calls in one second at 20 rps`);
  });

  it('never has more calls in flight than the concurrency limit, all instances together', async (t) => {
    const s = await setup(t, { rate: { concurrency: 3 } }, { profile: 'stable', overrides: { timeScale: 0.3 } });
    await s.produce(ids(30).map((id) => requestEvent(id)));
    await Promise.all([s.startReplay(), s.startReplay()]);
    await answered(s, 30);
    const stats = s.sim.stats();
    assert.ok(stats.maxInFlight <= 3, `max in flight ${stats.maxInFlight}`);
    assert.ok(stats.maxInFlight >= 2, 'the limit, not the traffic, was the bound');
  });

  it('stops at the request budget and counts the rest as shed_budget, balanced', async (t) => {
    const s = await setup(t, {}, { profile: 'fast' }, { budget: { maxRequests: 10 } });
    await s.produce(ids(30).map((id) => requestEvent(id)));
    await s.startReplay();
    await answered(s, 10);
    await waitFor(async () => (await s.outcomes.counts(s.experimentId, 'cand')).shed_budget === 20, { timeoutMs: 30_000, what: '20 shed' });
    const counts = await s.outcomes.counts(s.experimentId, 'cand');
    assert.equal(counts.consumed, 30);
    assert.equal(counts[PENDING], 10, 'the ten admitted wait for evaluation');
    assert.equal(s.sim.stats().requestsTotal, 10, 'the candidate saw exactly the budget');
  });

  it('retries 5xx with backoff and records every call that still failed as candidate_error', async (t) => {
    const s = await setup(t, { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 }, circuit: { window: 1000 } }, { profile: 'fast', overrides: { errorRate: 0.4, faultSeed: 'retry' } });
    await s.produce(ids(50).map((id) => requestEvent(id)));
    await s.startReplay();
    await answered(s, 50);
    const counts = await s.outcomes.counts(s.experimentId, 'cand');
    const stats = s.sim.stats();
    const failedCalls = stats.byStatus['500'] ?? 0;
    assert.ok(failedCalls > counts.candidate_error, `retries recovered some of ${failedCalls} failed calls (${counts.candidate_error} left)`);
    assert.equal(stats.requestsTotal, 50 + failedCalls - counts.candidate_error, 'one extra call per retry, none after a success or the last attempt');
    assert.equal(counts.consumed, 50);
  });

  it('opens the circuit after repeated failures and sheds the rest as shed_circuit', async (t) => {
    const s = await setup(t, { rate: { concurrency: 1 }, retry: { attempts: 1 }, circuit: { window: 5, failureRate: 0.5, openMs: 600_000 } }, { profile: 'fast', overrides: { errorRate: 1 } });
    await s.produce(ids(20).map((id) => requestEvent(id)));
    await s.startReplay();
    const counts = await s.settled(20);
    assert.equal(counts.candidate_error + counts.shed_circuit, 20);
    assert.equal(counts.candidate_error, 5, 'the circuit opens after its window of five failures');
    assert.equal(counts.shed_circuit, 15);
    assert.equal(s.sim.stats().requestsTotal, counts.candidate_error, 'no call went out while open');
  });

  it('closes the circuit when a probe after openMs succeeds, and calls resume', async (t) => {
    const s = await setup(t, { rate: { rps: 5, concurrency: 1 }, retry: { attempts: 1 }, circuit: { window: 5, failureRate: 0.5, openMs: 1_000 } }, { profile: 'fast', overrides: { errorRate: 1 } });
    await s.produce(ids(5, 'a').map((id) => requestEvent(id)));
    const replay = await s.startReplay();
    const circuit = async () => ((await (await fetch(`${replay.httpUrl}/admin/status`)).json()) as { arms: { circuit: string }[] }).arms[0]?.circuit;
    await s.settled(5);
    assert.equal(await circuit(), 'open');
    // The candidate recovers; at 5/s, 20 requests span about four openMs periods.
    s.sim.setProfile({ errorRate: 0 });
    await s.produce(ids(20, 'b').map((id) => requestEvent(id)));
    // Every request decided: shed, or answered (an answered one stays pending, waiting for evaluation).
    await waitFor(
      async () => {
        const now = await s.outcomes.counts(s.experimentId, 'cand');
        return now.consumed === 25 && (await s.scope.read(s.scope.config.kafka.topics.candidateResponses)).length === 5 + now[PENDING];
      },
      { timeoutMs: 30_000, what: 'all 25 decided' },
    );
    const counts = await s.outcomes.counts(s.experimentId, 'cand');
    assert.equal(counts.candidate_error, 5);
    assert.ok(counts.shed_circuit >= 1, `${counts.shed_circuit} shed while open`);
    assert.ok(counts[PENDING] >= 10, `${counts[PENDING]} answered after the circuit closed`);
    assert.equal(counts.shed_circuit + counts[PENDING], 20);
    assert.equal(await circuit(), 'closed');
  });

  it('sheds requests older than maxLagMs and applies the tool policy', async (t) => {
    const s = await setup(t, { toolPolicy: 'skip' }, { profile: 'fast' }, { maxLagMs: 60_000 });
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
    await s.produce([requestEvent('old', { occurredAt: Date.now() - 3_600_000 }), requestEvent('tools', { body: { tools } }), requestEvent('plain')]);
    await s.startReplay();
    await answered(s, 1);
    await waitFor(async () => (await s.outcomes.counts(s.experimentId, 'cand')).consumed === 3, { timeoutMs: 30_000, what: 'three consumed' });
    assert.equal(await s.outcomes.state(s.experimentId, 'cand', 'old'), Outcome.shedLag);
    assert.equal(await s.outcomes.state(s.experimentId, 'cand', 'tools'), Outcome.filtered);
    assert.equal(await s.outcomes.state(s.experimentId, 'cand', 'plain'), PENDING);
  });

  it('replays only the routes, models and tenants the filters name; the rest are counted filtered', async (t) => {
    const s = await setup(t, {}, { profile: 'fast' }, { filters: { routes: ['/v1/chat/completions'], models: ['m1'], tenants: ['acme'] } });
    await s.produce([
      requestEvent('match', { tenant: 'acme', body: { model: 'm1' } }),
      requestEvent('other-tenant', { tenant: 'globex', body: { model: 'm1' } }),
      requestEvent('no-tenant', { body: { model: 'm1' } }),
      requestEvent('other-model', { tenant: 'acme', body: { model: 'm2' } }),
    ]);
    await s.startReplay();
    await waitFor(async () => (await s.outcomes.counts(s.experimentId, 'cand')).consumed === 4, { timeoutMs: 30_000, what: 'four consumed' });
    await answered(s, 1);
    assert.equal(await s.outcomes.state(s.experimentId, 'cand', 'match'), PENDING);
    for (const id of ['other-tenant', 'no-tenant', 'other-model']) assert.equal(await s.outcomes.state(s.experimentId, 'cand', id), Outcome.filtered, id);
    assert.equal(s.sim.stats().requestsTotal, 1);
  });

  it('strips tools when the policy says so, and never forwards anything but its own headers', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setup(
      t,
      { toolPolicy: 'strip', headers: { 'x-team': 'ml' }, transforms: { systemPrompt: { mode: 'replace', text: 'Be brief.' }, params: { temperature: 0 } } },
      { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) },
    );
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
    await s.produce([
      requestEvent('with-tools', {
        // What a tapped bus might carry: none of it is the candidate's business.
        headers: { 'user-agent': 'shop-app/1.0', 'x-tenant-id': 'acme', authorization: 'Bearer user-secret', cookie: 'session=user-secret' },
        body: {
          tools,
          tool_choice: 'auto',
          messages: [
            { role: 'system', content: 'old system' },
            { role: 'user', content: 'hi' },
            { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{}' } }] },
            { role: 'tool', tool_call_id: 'c1', content: 'result' },
          ],
        },
      }),
    ]);
    await s.startReplay();
    await answered(s, 1);
    const [record] = await s.scope.read(s.scope.config.kafka.topics.candidateResponses);
    const decoded = decodeEvent(ResponseEventSchema, record?.value);
    assert.ok(decoded.ok);
    const sent = decoded.value.request;
    assert.equal(sent?.tools, undefined);
    assert.equal(sent?.tool_choice, undefined);
    assert.deepEqual(sent?.messages.map((message) => message.role), ['system', 'user', 'assistant']);
    assert.equal(sent?.messages[2]?.tool_calls, undefined);
    assert.equal(sent?.messages[0]?.content, 'Be brief.');
    assert.equal(sent?.temperature, 0);
    assert.equal(sent?.stream, true);

    assert.equal(arrivals.length, 1);
    const arrival = arrivals[0];
    assert.deepEqual(arrival?.request, sent, 'the candidate received the body the answer records');
    const headers = arrival?.headers ?? {};
    // What HTTP itself needs, and the arm's own headers; nothing copied from the recorded request.
    const transport = ['host', 'connection', 'content-length', 'content-type', 'accept'];
    const own = ['x-team', 'x-shadow-experiment', 'x-shadow-request-id'];
    assert.deepEqual(Object.keys(headers).filter((name) => !transport.includes(name)).toSorted(), own.toSorted(), JSON.stringify(headers));
    assert.equal(headers['x-team'], 'ml');
    assert.equal(headers['x-shadow-experiment'], s.experimentId);
    assert.equal(headers['x-shadow-request-id'], 'with-tools');
  });


  it('holds its place while paused and resumes where it stopped', async (t) => {
    const s = await setup(t, {});
    const replay = await s.startReplay();
    await replay.setPaused(true);
    await s.produce(ids(5).map((id) => requestEvent(id)));
    // A negative check needs a bounded wait: nothing may be consumed in this time.
    const deadline = Date.now() + 1_500;
    while (Date.now() < deadline) {
      assert.equal((await s.outcomes.counts(s.experimentId, 'cand')).consumed, 0, 'nothing consumed while paused');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await replay.setPaused(false);
    await answered(s, 5);
    assert.equal((await s.outcomes.counts(s.experimentId, 'cand')).consumed, 5);
  });

  it('adaptive pacing backs off when the candidate pushes back and recovers slowly when it stops', async (t) => {
    const arrivals: SimArrival[] = [];
    const adaptive = { minRps: 1, cooldownMs: 1_000, increaseRps: 1, increaseEveryMs: 500 };
    // The candidate takes 8 requests per second and answers the rest 429; the ceiling is 40.
    const s = await setup(
      t,
      { rate: { rps: 40, concurrency: 20, adaptive }, retry: { attempts: 1 }, circuit: { window: 10_000 } },
      { profile: 'fast', overrides: { capacityRps: 8, retryAfterSeconds: 1 }, onChat: (arrival) => arrivals.push(arrival) },
    );
    const replay = await s.startReplay();
    const pace = async () => {
      const status = (await (await fetch(`${replay.httpUrl}/admin/status`)).json()) as { arms: { pacing: string; rps: number }[] };
      assert.equal(status.arms[0]?.pacing, 'adaptive');
      return status.arms[0]?.rps ?? Number.NaN;
    };
    assert.equal(await pace(), 40, 'starts at the ceiling');
    await s.produce(ids(120, 'a').map((id) => requestEvent(id)));
    await answered(s, 120);
    const limited = arrivals.filter((arrival) => arrival.fault === 'rate_limit').length;
    // At a fixed 40/s, 80% of the calls would be refused; backing off keeps that small.
    assert.ok(limited / arrivals.length < 0.4, `${limited} of ${arrivals.length} calls refused`);
    const backedOff = await pace();
    assert.ok(backedOff < 40 && backedOff >= adaptive.minRps, `paced at ${backedOff}/s after push-back`);

    // The candidate recovers: the pace climbs back one step per increaseEveryMs at most.
    s.sim.setProfile({ capacityRps: 10_000 });
    const before = arrivals.length;
    const recoveryStarted = Date.now();
    await s.produce(ids(80, 'b').map((id) => requestEvent(id)));
    await answered(s, 200);
    const recovered = await pace();
    const elapsed = Date.now() - recoveryStarted;
    assert.equal(arrivals.slice(before).filter((arrival) => arrival.fault !== null).length, 0, 'nothing refused once the candidate has room');
    assert.ok(recovered > backedOff, `the pace rose from ${backedOff} to ${recovered}`);
    assert.ok(recovered - backedOff <= adaptive.increaseRps * (elapsed / adaptive.increaseEveryMs + 1), `rose ${recovered - backedOff}/s in ${elapsed} ms: slowly`);
  });

  it('honours Retry-After: a 429 is retried no sooner than the candidate asked', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setup(
      t,
      { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5_000 }, circuit: { window: 1_000 } },
      { profile: 'fast', overrides: { rateLimitRate: 0.3, retryAfterSeconds: 1, faultSeed: 'retry-after' }, onChat: (arrival) => arrivals.push(arrival) },
    );
    await s.produce(ids(30).map((id) => requestEvent(id)));
    await s.startReplay();
    await answered(s, 30);
    const byRequest = new Map<string, SimArrival[]>();
    for (const arrival of arrivals) {
      const id = String(arrival.headers['x-shadow-request-id']);
      byRequest.set(id, [...(byRequest.get(id) ?? []), arrival]);
    }
    let retried = 0;
    for (const [id, calls] of byRequest) {
      for (let i = 1; i < calls.length; i++) {
        const [previous, call] = [calls[i - 1], calls[i]];
        assert.equal(previous?.fault, 'rate_limit', `${id}: only a refused call is retried`);
        const gap = (call?.receivedAt ?? 0) - (previous?.receivedAt ?? 0);
        assert.ok(gap >= 999, `${id}: retried ${gap} ms after a 429 with Retry-After: 1`);
        retried++;
      }
    }
    assert.ok(retried >= 3, `${retried} retries observed`);
    assert.equal(byRequest.size, 30);
  });

  it('does not retry a 429 whose Retry-After is longer than the retry policy allows', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setup(
      t,
      { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2_000 }, circuit: { window: 1_000 } },
      { profile: 'fast', overrides: { rateLimitRate: 1, retryAfterSeconds: 30 }, onChat: (arrival) => arrivals.push(arrival) },
    );
    await s.produce(ids(5).map((id) => requestEvent(id)));
    await s.startReplay();
    const counts = await s.settled(5);
    assert.equal(counts.candidate_error, 5);
    assert.equal(arrivals.length, 5, 'one call each: retrying sooner than asked would break the rate limit');
    const responses = await s.scope.read(s.scope.config.kafka.topics.candidateResponses);
    for (const record of responses) {
      const decoded = decodeEvent(ResponseEventSchema, record.value);
      assert.ok(decoded.ok);
      assert.equal(decoded.value.status, 429);
    }
  });

  it('two instances sharing one budget stop at it together: requests exactly, tokens within what was in flight', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setup(t, { rate: { concurrency: 4 } }, { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) }, { budget: { maxRequests: 25 } });
    await s.produce(ids(80).map((id) => requestEvent(id)));
    await Promise.all([s.startReplay(), s.startReplay()]);
    await waitFor(async () => (await s.outcomes.counts(s.experimentId, 'cand')).consumed === 80, { timeoutMs: 60_000, what: '80 consumed' });
    await answered(s, 25);
    const counts = await s.outcomes.counts(s.experimentId, 'cand');
    assert.equal(arrivals.length, 25, 'the candidate saw exactly the request budget');
    assert.equal(counts.shed_budget, 55);
    assert.equal(counts[PENDING], 25);
  });

  it('two instances sharing a token budget overshoot it by no more than the calls in flight', async (t) => {
    const concurrency = 4;
    const maxTokens = 3_000;
    const s = await setup(t, { rate: { concurrency, expectedOutputTokens: 64 } }, { profile: 'fast', overrides: { outputTokens: { mean: 40, sd: 10 } } }, { budget: { maxTokens } });
    await s.produce(ids(120).map((id) => requestEvent(id)));
    await Promise.all([s.startReplay(), s.startReplay()]);
    await waitFor(async () => (await s.outcomes.counts(s.experimentId, 'cand')).consumed === 120, { timeoutMs: 60_000, what: '120 consumed' });
    const counts = await s.outcomes.counts(s.experimentId, 'cand');
    await answered(s, counts[PENDING]);
    const used = (await s.scope.read(s.scope.config.kafka.topics.candidateResponses)).map((record) => {
      const decoded = decodeEvent(ResponseEventSchema, record.value);
      assert.ok(decoded.ok);
      return decoded.value.usage?.total ?? 0;
    });
    const total = used.reduce((sum, tokens) => sum + tokens, 0);
    const largest = Math.max(...used);
    assert.ok(counts.shed_budget > 0, 'the budget was reached');
    assert.ok(total <= maxTokens + concurrency * largest, `${total} tokens used of ${maxTokens} (+ ${concurrency} in flight × ${largest})`);
    assert.equal(counts[PENDING] + counts.shed_budget, 120);
  });

  it('an instance joining a busy, slowly paced group takes its share without any request called twice', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setup(t, { rate: { rps: 6, concurrency: 4 } }, { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    await s.produce(ids(60).map((id) => requestEvent(id)));
    const first = await s.startReplay();
    await waitFor(() => arrivals.length >= 6, { timeoutMs: 30_000, what: 'the first instance to be calling' });
    const second = await s.startReplay();
    await answered(s, 60);
    const calls = async (replay: ReplayService) => {
      const text = await (await fetch(`${replay.httpUrl}/metrics`)).text();
      return [...text.matchAll(/^shadow_replay_candidate_calls_total\{[^}]*\} (\d+)/gmu)].reduce((sum, match) => sum + Number(match[1]), 0);
    };
    const ids60 = arrivals.map((arrival) => String(arrival.headers['x-shadow-request-id']));
    assert.equal(new Set(ids60).size, 60, 'every request called');
    assert.equal(ids60.length, 60, 'none called twice');
    assert.ok((await calls(second)) > 0, 'the joining instance got partitions and called');
    assert.equal((await calls(first)) + (await calls(second)), 60);
  });

  it('a stop mid-batch gives back the budget of requests still waiting for a slot, and the next instance calls each exactly once', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setup(t, { rate: { rps: 4, concurrency: 2 } }, { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) }, { budget: { maxRequests: 1000 } });
    await s.produce(ids(20).map((id) => requestEvent(id)));
    const first = await s.startReplay();
    await waitFor(() => arrivals.length >= 3, { timeoutMs: 30_000, what: 'the first calls' });
    const spent = async (replay: ReplayService) => ((await (await fetch(`${replay.httpUrl}/admin/status`)).json()) as { arms: { budgetSpent: { requests: number } }[] }).arms[0]?.budgetSpent.requests;
    await first.close();
    const called = new Set(arrivals.map((arrival) => String(arrival.headers['x-shadow-request-id']))).size;
    const second = await s.startReplay();
    // Only the requests actually called hold budget: the waiting ones were handed back.
    assert.equal(await spent(second), called, `${called} calls made before the stop`);
    await answered(s, 20);
    const calls = arrivals.map((arrival) => String(arrival.headers['x-shadow-request-id']));
    assert.equal(new Set(calls).size, 20, 'every request called');
    assert.equal(calls.length, 20, 'none twice');
    assert.equal(await spent(second), 20, 'the budget counts each request once');
  });
});
