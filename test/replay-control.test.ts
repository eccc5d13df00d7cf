import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Outcome, PENDING, ResponseEventSchema, decodeEvent, type RequestEvent } from '@shadow-replay/contracts';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { ReplayService, replaySettings } from '@shadow-replay/replay';
import { createSimServer, type SimServerOptions } from '@shadow-replay/sim';
import { requestEvent } from './support/events.js';
import { testScope, type TestScope } from './support/harness.js';

interface Setup {
  scope: TestScope;
  experimentId: string;
  outcomes: OutcomeStore;
  sim: ReturnType<typeof createSimServer>;
  startReplay: () => Promise<ReplayService>;
  produce: (events: RequestEvent[]) => Promise<void>;
  settled: (count: number) => Promise<Awaited<ReturnType<OutcomeStore['counts']>>>;
}

async function setup(t: TestContext, candidate: Record<string, unknown>, sim: SimServerOptions = { profile: 'fast' }, experiment: Record<string, unknown> = {}): Promise<Setup> {
  const server = createSimServer(sim);
  const { url } = await server.start();
  t.after(() => server.close());
  const scope = testScope(t, (id) => ({
    experiment: { id: `exp-${id}`, startFrom: 'earliest', candidates: [{ name: 'cand', baseUrl: url, ...candidate }], ...experiment },
  }));
  const experimentId = scope.config.experiment?.id ?? '';
  const topics = scope.config.kafka.topics;
  await ensureTopics(scope.kafka, [topics.requests, topics.candidateResponses, topics.deadLetter], 3);
  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  const producer = scope.kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  return {
    scope,
    experimentId,
    outcomes,
    sim: server,
    startReplay: async () => {
      const replay = new ReplayService({ settings: replaySettings(scope.config, scope.env), log: silentLogger() });
      t.after(() => replay.close());
      await replay.start();
      return replay;
    },
    produce: async (events) => {
      await producer.send({ topic: topics.requests, messages: events.map((event) => ({ key: event.requestId, value: JSON.stringify(event) })) });
    },
    settled: async (count) => {
      await waitFor(
        async () => {
          const counts = await outcomes.counts(experimentId, 'cand');
          return counts.consumed === count && counts[PENDING] === 0 && counts.consumed > 0;
        },
        { timeoutMs: 60_000, what: `${count} requests settled` },
      );
      return outcomes.counts(experimentId, 'cand');
    },
  };
}

/** Replay alone settles nothing as evaluated; a successful call stays pending until the evaluator. */
async function answered(s: Setup, count: number): Promise<void> {
  await waitFor(async () => (await s.scope.read(s.scope.config.kafka.topics.candidateResponses)).length >= count, { timeoutMs: 60_000, what: `${count} candidate responses` });
}

const ids = (n: number, prefix = 'r') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

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

  it('strips tools when the policy says so, and never forwards anything but its own headers', async (t) => {
    const s = await setup(t, { toolPolicy: 'strip', headers: { 'x-team': 'ml' }, transforms: { systemPrompt: { mode: 'replace', text: 'Be brief.' }, params: { temperature: 0 } } });
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
    await s.produce([
      requestEvent('with-tools', {
        body: {
        tools,
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
    assert.deepEqual(sent?.messages.map((message) => message.role), ['system', 'user', 'assistant']);
    assert.equal(sent?.messages[0]?.content, 'Be brief.');
    assert.equal(sent?.temperature, 0);
    assert.equal(sent?.stream, true);
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
});
