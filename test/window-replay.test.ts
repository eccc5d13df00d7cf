import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PENDING } from '@shadow-replay/contracts';
import { runWindow } from '@shadow-replay/cli';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { createSimServer, type SimArrival } from '@shadow-replay/sim';
import { requestEvent, responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('replaying a historical window', () => {
  it('replays exactly the requests stamped in [from, to) — at from in, at to out, late-written ones in, early stragglers out — pairs them with the stable answers of that window and evaluates them', async (t) => {
    const arrivals: SimArrival[] = [];
    const sim = createSimServer({ profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    const candidate = await sim.start();
    t.after(() => sim.close());
    const scope = testScope(t, (id) => ({ experiment: { id: `hist-${id}`.slice(0, 40), maxLagMs: 1_000, candidates: [{ name: 'cand', baseUrl: candidate.url }] }, replay: { listen: { port: 0 }, windowLateMs: 5 * MINUTE } }));
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.evaluations, topics.deadLetter], 3);

    const from = Date.now() - 5 * HOUR;
    const to = from + HOUR;
    // Written in this order to each partition; timestamps do not grow with offsets, as with several gateways.
    const partitionPlan = (p: number) => [
      { id: `p${p}-before`, at: from - HOUR + p },
      { id: `p${p}-at-from`, at: from + p, inside: true },
      ...Array.from({ length: 5 }, (_, k) => ({ id: `p${p}-inside-${k}`, at: from + (k + 1) * 10 * MINUTE + p, inside: true })),
      { id: `p${p}-at-to`, at: to + p },
      { id: `p${p}-written-late`, at: to - 1 - p, inside: true },
      { id: `p${p}-straggler-before-from`, at: from - 1 - p },
      { id: `p${p}-written-later`, at: from + 30 * MINUTE, inside: true },
      { id: `p${p}-after`, at: to + 10 * MINUTE + p },
      { id: `p${p}-hours-after`, at: to + 2 * HOUR + p },
    ];
    const plan = [0, 1, 2].flatMap((p) => partitionPlan(p).map((entry) => ({ ...entry, partition: p })));
    const inside = plan.filter((entry) => entry.inside === true).map((entry) => entry.id);
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    for (const p of plan) {
      await producer.send({ topic: topics.requests, messages: [{ key: p.id, partition: p.partition, value: JSON.stringify(requestEvent(p.id, { occurredAt: p.at })), timestamp: String(p.at) }] });
    }
    // The live answers come roughly in time order (the gateway publishes each after its answer).
    await producer.send({ topic: topics.stableResponses, messages: plan.toSorted((a, b) => a.at - b.at).map((p) => ({ key: p.id, value: JSON.stringify(responseEvent(p.id, 'stable', { content: `recorded answer ${p.id}`, e2eMs: 120, occurredAt: p.at + 120 })), timestamp: String(p.at + 120) })) });

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
    const n = inside.length;
    assert.deepEqual(arrivals.map((arrival) => String(arrival.headers['x-shadow-request-id'])).toSorted(), inside.toSorted(), 'the candidate saw the window and nothing else');
    assert.equal(summary.total, n);
    assert.equal(summary.handled, n);
    // Read and left alone, per partition: the record stamped `to` and the straggler stamped before `from`
    // (the scan stops at the first record stamped 5 min or more past `to`).
    assert.equal(summary.outside, 3 * 2);
    assert.match(summary.experimentId, /-w\d{8}T\d{4}-\d{8}T\d{4}$/);
    assert.ok(summary.stablePreloaded >= n, `stable answers loaded: ${summary.stablePreloaded}`);
    assert.ok(lines.some((line) => line.includes(`${n + 6} records to read`)), lines.join('\n'));

    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(
      async () => {
        const counts = await outcomes.counts(summary.experimentId, 'cand');
        return counts.evaluated === n && counts[PENDING] === 0;
      },
      { timeoutMs: 60_000, what: 'the window pairs to be evaluated' },
    );
    const counts = await outcomes.counts(summary.experimentId, 'cand');
    assert.equal(counts.consumed, n, 'records outside the window are not consumed by its experiment');
    assert.equal(counts.shed_lag, 0, 'a window replay is never shed for lag');
  });

  it('paces at the recorded inter-arrival times divided by --speed, from the first record read (no burst after a slow start)', async (t) => {
    const arrivals: SimArrival[] = [];
    const sim = createSimServer({ profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    const candidate = await sim.start();
    t.after(() => sim.close());
    const scope = testScope(t, (id) => ({ experiment: { id: `speed-${id}`.slice(0, 40), candidates: [{ name: 'cand', baseUrl: candidate.url }] } }));
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.deadLetter], 1);
    const from = Date.now() - HOUR;
    // Eight requests recorded 600 ms apart from the window's start: 300 ms apart at speed 2.
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    await producer.send({
      topic: topics.requests,
      messages: Array.from({ length: 8 }, (_, i) => ({ key: `s${i}`, value: JSON.stringify(requestEvent(`s${i}`, { occurredAt: from + i * 600 })), timestamp: String(from + i * 600) })),
    });
    // Started paused, as when the group join takes long: records are read late, and the recorded
    // schedule starts with the first of them, not when the service started.
    const experimentId = `speed-${scope.id}`.slice(0, 40);
    const pausedKey = `${scope.config.redis.keyPrefix}:replay:{${experimentId}}:paused`;
    await scope.redis.set(pausedKey, '1');
    const running = runWindow({ config: scope.config, experimentId, from, to: from + 10_000, speed: 2, log: silentLogger(), print: () => undefined });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(arrivals.length, 0, 'nothing sent while paused');
    await scope.redis.del(pausedKey);
    const summary = await running;
    assert.equal(summary.handled, 8);
    const times = arrivals.map((arrival) => arrival.receivedAt).toSorted((a, b) => a - b);
    const gaps = times.slice(1).map((time, i) => time - (times[i] ?? 0));
    assert.equal(gaps.length, 7);
    for (const gap of gaps) assert.ok(gap >= 200, `calls ${gaps.join(', ')} ms apart; 300 expected`);
    const span = (times.at(-1) ?? 0) - (times[0] ?? 0);
    assert.ok(span >= 7 * 300 - 100 && span < 7 * 300 + 1_500, `the eight calls span ${span} ms (2,100 at speed 2)`);
  });
});
