import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PENDING } from '@shadow-replay/contracts';
import { runWindow } from '@shadow-replay/cli';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { createSimServer } from '@shadow-replay/sim';
import { requestEvent, responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';

const HOUR = 3_600_000;

describe('replaying a historical window', () => {
  it('replays exactly the requests recorded in [from, to), pairs them with the stable answers of that window and evaluates them', async (t) => {
    const sim = createSimServer({ profile: 'fast' });
    const candidate = await sim.start();
    t.after(() => sim.close());
    const scope = testScope(t, (id) => ({ experiment: { id: `hist-${id}`.slice(0, 40), maxLagMs: 1_000, candidates: [{ name: 'cand', baseUrl: candidate.url }] } }));
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.evaluations, topics.deadLetter], 3);

    const from = Date.now() - 5 * HOUR;
    const to = from + HOUR;
    const plan = [
      ...Array.from({ length: 8 }, (_, i) => ({ id: `before-${i}`, at: from - HOUR + i * 1000 })),
      ...Array.from({ length: 20 }, (_, i) => ({ id: `inside-${i}`, at: from + i * 60_000 })),
      ...Array.from({ length: 8 }, (_, i) => ({ id: `after-${i}`, at: to + i * 1000 })),
    ];
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    await producer.send({ topic: topics.requests, messages: plan.map((p) => ({ key: p.id, value: JSON.stringify(requestEvent(p.id, { occurredAt: p.at })), timestamp: String(p.at) })) });
    await producer.send({ topic: topics.stableResponses, messages: plan.map((p) => ({ key: p.id, value: JSON.stringify(responseEvent(p.id, 'stable', { content: `recorded answer ${p.id}`, e2eMs: 120, occurredAt: p.at + 120 })), timestamp: String(p.at + 120) })) });

    // The join here reads live stable answers from another (empty) topic, so the stable side of
    // every pair can only come from the answers the window command loads for it.
    const liveStable = `${topics.stableResponses}.live`;
    await ensureTopics(scope.kafka, [liveStable], 1);
    t.after(async () => {
      const admin = scope.kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [liveStable] }).catch(() => undefined);
      await admin.disconnect();
    });
    const joinConfig = { ...scope.config, kafka: { ...scope.config.kafka, topics: { ...topics, stableResponses: liveStable } } };
    const join = new JoinService({ settings: joinSettings(joinConfig, scope.env), log: silentLogger() });
    const evaluator = new EvaluatorService({ settings: evaluatorSettings(scope.config, scope.env), log: silentLogger() });
    t.after(() => Promise.all([join.close(), evaluator.close()]));
    await join.start();
    await evaluator.start();

    const lines: string[] = [];
    const summary = await runWindow({ config: scope.config, from, to, rate: 200, log: silentLogger(), print: (line) => lines.push(line) });
    assert.equal(summary.total, 20);
    assert.equal(summary.handled, 20);
    assert.match(summary.experimentId, /-w\d{8}T\d{4}-\d{8}T\d{4}$/);
    assert.ok(summary.stablePreloaded >= 20, `stable answers loaded: ${summary.stablePreloaded}`);
    assert.ok(lines.some((line) => line.includes('20 requests')), lines.join('\n'));
    assert.equal(sim.stats().requestsTotal, 20, 'the candidate saw the window and nothing else');

    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(
      async () => {
        const counts = await outcomes.counts(summary.experimentId, 'cand');
        return counts.evaluated === 20 && counts[PENDING] === 0;
      },
      { timeoutMs: 60_000, what: 'the window pairs to be evaluated' },
    );
    const counts = await outcomes.counts(summary.experimentId, 'cand');
    assert.equal(counts.consumed, 20);
    assert.equal(counts.shed_lag, 0, 'a window replay is never shed for lag');
  });

  it('paces at the recorded inter-arrival times divided by --speed', async (t) => {
    const sim = createSimServer({ profile: 'fast' });
    const candidate = await sim.start();
    t.after(() => sim.close());
    const scope = testScope(t, (id) => ({ experiment: { id: `speed-${id}`.slice(0, 40), candidates: [{ name: 'cand', baseUrl: candidate.url }] } }));
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.deadLetter], 1);
    const from = Date.now() - HOUR;
    // Six requests recorded 600 ms apart: 3 s of traffic, 1.5 s at speed 2.
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    await producer.send({
      topic: topics.requests,
      messages: Array.from({ length: 6 }, (_, i) => ({ key: `s${i}`, value: JSON.stringify(requestEvent(`s${i}`, { occurredAt: from + i * 600 })), timestamp: String(from + i * 600) })),
    });
    const summary = await runWindow({ config: scope.config, from, to: from + 10_000, speed: 2, log: silentLogger(), print: () => undefined });
    assert.equal(summary.handled, 6);
    const arrivals = sim.stats().arrivals.filter((second) => second.count > 0);
    assert.ok(arrivals.length >= 2, `six calls spread over ${arrivals.length} second(s), not sent at once`);
  });
});
