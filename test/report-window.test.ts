import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PENDING } from '@shadow-replay/contracts';
import { loadExperimentReport } from '@shadow-replay/cli';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { ReplayService, replaySettings } from '@shadow-replay/replay';
import { createSimServer } from '@shadow-replay/sim';
import { requestEvent, responseEvent } from './support/events.js';
import { testInfra, testScope } from './support/harness.js';

const MINUTE = 60_000;

describe('a report over a window of request times', () => {
  it('balances once drained and counts exactly the requests that occurred in the window, in its records and its counters', async (t) => {
    const sim = createSimServer({ profile: 'fast' });
    const candidate = await sim.start();
    t.after(() => sim.close());
    // Half the requests are sampled out, so the window holds more than one outcome.
    const scope = testScope(t, (id) => ({
      experiment: { id: `win-${id}`.slice(0, 40), startFrom: 'earliest', sampling: { rate: 0.5 }, candidates: [{ name: 'cand', baseUrl: candidate.url }] },
    }));
    const experimentId = scope.config.experiment!.id;
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.evaluations, topics.deadLetter], 3);

    // Three bursts of 12 requests, in three different minutes of an hour ago.
    const base = Math.floor((Date.now() - 3_600_000) / MINUTE) * MINUTE;
    const plan = [0, 2, 5].flatMap((minute) => Array.from({ length: 12 }, (_, i) => ({ id: `m${minute}-${i}`, minute, at: base + minute * MINUTE + i * 4_000 })));
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    await producer.send({ topic: topics.requests, messages: plan.map((p) => ({ key: p.id, value: JSON.stringify(requestEvent(p.id, { occurredAt: p.at })) })) });
    await producer.send({
      topic: topics.stableResponses,
      messages: plan.map((p) => ({ key: p.id, value: JSON.stringify(responseEvent(p.id, 'stable', { content: `answer ${p.id}`, e2eMs: 120, occurredAt: p.at + 120 })) })),
    });

    const replay = new ReplayService({ settings: replaySettings(scope.config, scope.env), log: silentLogger() });
    const join = new JoinService({ settings: joinSettings(scope.config, scope.env), log: silentLogger() });
    const evaluator = new EvaluatorService({ settings: evaluatorSettings(scope.config, scope.env), log: silentLogger() });
    t.after(() => Promise.all([replay.close(), join.close(), evaluator.close()]));
    await Promise.all([replay.start(), join.start(), evaluator.start()]);

    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(
      async () => {
        const counts = await outcomes.counts(experimentId, 'cand');
        return counts.consumed === plan.length && counts[PENDING] === 0;
      },
      { timeoutMs: 90_000, what: 'every request at its outcome' },
    );
    const totals = await outcomes.counts(experimentId, 'cand');
    assert.ok(totals.evaluated > 0 && totals.sampled_out > 0, JSON.stringify(totals));
    // Evaluation records reach the topic after the counter moves: wait until the whole report sees them all.
    const infra = testInfra();
    const report = (window: { from?: number; to?: number }) =>
      loadExperimentReport({
        experimentId,
        ...window,
        topics,
        keyPrefix: scope.config.redis.keyPrefix,
        addresses: { kafkaBrokers: infra.kafkaBrokers, redisUrl: infra.redisUrl, schemaRegistryUrl: infra.schemaRegistryUrl },
        log: silentLogger(),
      });
    await waitFor(async () => (await report({})).report.conservation.balanced, { timeoutMs: 30_000, what: 'the whole-experiment report to balance' });

    // The middle minute, asked for with ends inside it: widened to [base + 2 min, base + 3 min).
    const middle = await report({ from: base + 2 * MINUTE + 10_000, to: base + 2 * MINUTE + 30_000 });
    const inMiddle = plan.filter((p) => p.minute === 2).map((p) => p.id);
    const { conservation } = middle.report;
    assert.equal(conservation.balanced, true, conservation.notes.join(' | '));
    assert.equal(conservation.consumed, inMiddle.length, 'the window counts exactly the 12 requests of its minute');
    assert.equal(conservation.outcomes.sampled_out + conservation.outcomes.evaluated, inMiddle.length);
    const states = await Promise.all(inMiddle.map(async (id) => [id, await outcomes.state(experimentId, 'cand', id)] as const));
    const evaluatedInMiddle = states.filter(([, state]) => state === 'evaluated').map(([id]) => id);
    assert.deepEqual(middle.records.map((record) => record.requestId).sort(), evaluatedInMiddle.sort(), 'the records are exactly the evaluated requests of the minute');
    assert.equal(middle.records.length, conservation.outcomes.evaluated);
    assert.deepEqual(middle.report.window, { from: new Date(base + 2 * MINUTE).toISOString(), to: new Date(base + 3 * MINUTE).toISOString() });
    assert.ok(conservation.notes.some((note) => note.startsWith('window: requests that occurred in')), conservation.notes.join(' | '));

    // Two of the three bursts, and an open end: each balances and holds exactly its requests.
    const firstTwo = await report({ from: base, to: base + 3 * MINUTE });
    assert.equal(firstTwo.report.conservation.balanced, true);
    assert.equal(firstTwo.report.conservation.consumed, 24);
    const lastFromOpenEnd = await report({ from: base + 4 * MINUTE });
    assert.equal(lastFromOpenEnd.report.conservation.balanced, true);
    assert.equal(lastFromOpenEnd.report.conservation.consumed, 12);
    assert.ok(lastFromOpenEnd.records.every((record) => record.requestId.startsWith('m5-')));
    const sum = [middle, firstTwo, lastFromOpenEnd].map((entry) => entry.report.conservation.outcomes.evaluated);
    assert.equal(sum[1]! + sum[2]!, totals.evaluated, 'the windows add up to the whole experiment');

    // A record on the evaluations topic that is not an evaluation record is skipped and said so.
    await producer.send({ topic: topics.evaluations, messages: [{ key: 'junk', value: '{"not": "a record"' }] });
    const withJunk = await report({});
    assert.equal(withJunk.report.conservation.balanced, true);
    assert.ok(
      withJunk.report.conservation.notes.some((note) => /^1 record\(s\) on .* could not be read as evaluation records and were skipped .*invalid_json/.test(note)),
      withJunk.report.conservation.notes.join(' | '),
    );
  });
});
