import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationRecordSchema, PENDING, decodeEvent } from '@shadow-replay/contracts';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { ReplayService, replaySettings } from '@shadow-replay/replay';
import { createSimServer } from '@shadow-replay/sim';
import { testScope } from './support/harness.js';

describe('tapping an existing event bus', () => {
  it('replays foreign "combined" log records (request and live answer in one record) and evaluates them against the recorded answer', async (t) => {
    const sim = createSimServer({ profile: 'fast' });
    const candidate = await sim.start();
    t.after(() => sim.close());
    const scope = testScope(t, (id) => ({
      experiment: {
        id: `tap-${id}`.slice(0, 40),
        startFrom: 'earliest',
        input: {
          kind: 'field-mapping',
          topics: [`${id}.company-llm-log`],
          mapping: {
            requestId: '/trace/id',
            occurredAt: '/ts',
            messages: '/req/messages',
            model: '/req/model',
            tenant: '/org',
            stable: { content: '/resp/text', finishReason: '/resp/stop', promptTokens: '/usage/in', completionTokens: '/usage/out', latencyMs: '/latency_ms' },
          },
        },
        candidates: [{ name: 'cand', baseUrl: candidate.url }],
      },
    }));
    const tapped = `${scope.id}.company-llm-log`;
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [tapped, ...Object.values(topics)], 3);
    t.after(async () => {
      const admin = scope.kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [tapped] }).catch(() => undefined);
      await admin.disconnect();
    });
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    const now = Math.floor(Date.now() / 1000);
    const good = Array.from({ length: 12 }, (_, i) => ({
      trace: { id: `log-${i}` },
      ts: now - 60 + i,
      org: 'acme',
      req: { model: 'prod-model', messages: [{ role: 'user', content: `tapped question ${i}` }] },
      resp: { text: `recorded answer ${i}`, stop: 'stop' },
      usage: { in: 4, out: 3 },
      latency_ms: 250 + i,
    }));
    await producer.send({
      topic: tapped,
      messages: [
        ...good.map((record) => ({ key: record.trace.id, value: JSON.stringify(record) })),
        { key: 'no-id', value: JSON.stringify({ ts: now, req: { messages: [{ role: 'user', content: 'x' }] }, resp: { text: 'y' }, latency_ms: 1 }) },
        { key: 'garbage', value: 'not json at all' },
      ],
    });

    const services = [
      new JoinService({ settings: joinSettings(scope.config, scope.env), log: silentLogger() }),
      new EvaluatorService({ settings: evaluatorSettings(scope.config, scope.env), log: silentLogger() }),
      new ReplayService({ settings: replaySettings(scope.config, scope.env), log: silentLogger() }),
    ];
    t.after(() => Promise.all(services.map((service) => service.close())));
    for (const service of services) await service.start();

    const experimentId = scope.config.experiment?.id ?? '';
    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(
      async () => {
        const counts = await outcomes.counts(experimentId, 'cand');
        return counts.consumed === 14 && counts[PENDING] === 0;
      },
      { timeoutMs: 60_000, what: 'every tapped record at its outcome' },
    );
    const counts = await outcomes.counts(experimentId, 'cand');
    assert.equal(counts.evaluated, 12);
    assert.equal(counts.dead_letter, 2, 'a record without an id and one that is not JSON are dead-lettered');
    const reasons = (await scope.read(topics.deadLetter)).map((record) => String(record.headers['x-dlq-reason']));
    assert.ok(reasons.some((reason) => reason.startsWith('mapping_missing: requestId')), reasons.join(' | '));
    assert.ok(reasons.some((reason) => reason.startsWith('invalid_json')), reasons.join(' | '));
    const records = (await scope.read(topics.evaluations)).map((record) => decodeEvent(EvaluationRecordSchema, record.value));
    const first = records.find((decoded) => decoded.ok && decoded.value.requestId === 'log-0');
    assert.ok(first?.ok);
    assert.equal(first.value.stable.e2eMs, 250, 'the stable side is the recorded answer of the combined record');
    assert.equal(first.value.stable.completionTokens, 3);
  });
});
