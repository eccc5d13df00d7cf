import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { EvaluationRecordSchema, OUTCOMES, Outcome, PENDING, decodeEvent, type ResponseEvent, type ShadowConfig } from '@shadow-replay/contracts';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor, type OutcomeCounts } from '@shadow-replay/platform';
import type { Kafka, Message } from 'kafkajs';
import { responseEvent } from './support/events.js';
import { testScope, type TestScope } from './support/harness.js';
import { freePort, scrapeMetric } from './support/service-process.js';

const ARMS = ['cand-a', 'cand-b'] as const;
const PER_PHASE = 120;
/** Long enough that no pair is split by a rebalance of three join instances; orphans wait it out. */
const WINDOW_MS = 30_000;

interface Traffic {
  stable: Message[];
  candidate: Message[];
  /** What replay would have counted: per arm, the requests consumed and those it settled itself. */
  consumed: Array<{ requestId: string; arm: string; settled?: Outcome }>;
}

/**
 * Deterministic traffic of one phase: pairs, orphans (no stable side), stable answers nobody
 * asked for, failed candidate calls, candidates before their stable side, and redeliveries.
 */
function traffic(experimentId: string, phase: string): Traffic {
  const out: Traffic = { stable: [], candidate: [], consumed: [] };
  const message = (event: ResponseEvent): Message => ({ key: event.requestId, value: JSON.stringify(event) });
  for (let i = 0; i < PER_PHASE; i++) {
    const id = `${phase}-${i}`;
    const kind = i % 10;
    const stable = message(responseEvent(id, 'stable', { content: `The answer to ${id} is ${i}.`, e2eMs: 100 + (i % 7) * 10 }));
    if (kind === 1) {
      out.stable.push(stable);
      continue;
    }
    const candidates = ARMS.map((arm, a) => {
      const event = responseEvent(id, arm, { experimentId, content: i % 3 === a ? `The answer to ${id} is ${i}.` : `I think ${id} is ${i + a}.`, e2eMs: 90 + (i % 11) * 10 + a });
      if (kind === 2 && arm === 'cand-a') return message({ ...event, outcome: 'error', status: 503, response: null, error: { code: 'http_503', message: 'unavailable', retryable: true } });
      return message(event);
    });
    for (const arm of ARMS) out.consumed.push({ requestId: id, arm, ...(kind === 2 && arm === 'cand-a' ? { settled: Outcome.candidateError } : {}) });
    if (kind !== 0) out.stable.push(stable);
    out.candidate.push(...candidates);
    // Redelivered, as Kafka does after a crash.
    if (kind === 4) {
      out.stable.push(stable);
      out.candidate.push(...candidates);
    }
  }
  return out;
}

async function publish(kafka: Kafka, config: ShadowConfig, batch: Traffic): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic: config.kafka.topics.candidateResponses, messages: batch.candidate.filter((_, i) => i % 2 === 0) });
    await producer.send({ topic: config.kafka.topics.stableResponses, messages: batch.stable });
    await producer.send({ topic: config.kafka.topics.candidateResponses, messages: batch.candidate.filter((_, i) => i % 2 === 1) });
  } finally {
    await producer.disconnect();
  }
}

/** One deployment: `instances` joins and as many evaluators on one configuration. */
async function deploy(t: TestContext, scope: TestScope, instances: number) {
  const joins: Array<{ service: JoinService; url: string }> = [];
  const evaluators: Array<{ service: EvaluatorService; url: string }> = [];
  const listen = async () => ({ host: '127.0.0.1', port: await freePort() });
  for (let i = 0; i < instances; i++) {
    const config = { ...scope.config, evaluator: { ...scope.config.evaluator, listen: await listen() } };
    const service = new EvaluatorService({ settings: evaluatorSettings(config, scope.env), log: silentLogger() });
    t.after(() => service.close());
    evaluators.push({ service, url: `http://127.0.0.1:${config.evaluator.listen.port}` });
  }
  for (let i = 0; i < instances; i++) {
    const config = { ...scope.config, join: { ...scope.config.join, listen: await listen() } };
    const service = new JoinService({ settings: joinSettings(config, scope.env), log: silentLogger() });
    t.after(() => service.close());
    joins.push({ service, url: `http://127.0.0.1:${config.join.listen.port}` });
  }
  await Promise.all(evaluators.map(({ service }) => service.start()));
  await Promise.all(joins.map(({ service }) => service.start()));
  return { joins, evaluators };
}

async function account(scope: TestScope, experimentId: string, batch: Traffic): Promise<void> {
  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  for (const { requestId, arm, settled } of batch.consumed) {
    await outcomes.consume(experimentId, arm, requestId);
    if (settled !== undefined) await outcomes.settle(experimentId, arm, requestId, settled);
  }
}

async function waitStableGroup(kafka: Kafka, groupId: string, members: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitFor(
      async () => {
        const { groups } = await admin.describeGroups([groupId]);
        return groups[0]?.state === 'Stable' && groups[0].members.length === members;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: `group ${groupId} to be stable with ${members} members` },
    );
  } finally {
    await admin.disconnect();
  }
}

async function drained(scope: TestScope, experimentId: string, expected: Record<string, number>): Promise<Record<string, OutcomeCounts>> {
  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  let last: Record<string, OutcomeCounts> = {};
  await waitFor(
    async () => {
      last = await outcomes.allCounts(experimentId);
      return ARMS.every((arm) => {
        const counts = last[arm];
        return counts !== undefined && counts.consumed === expected[arm] && counts[PENDING] === 0;
      });
    },
    { timeoutMs: WINDOW_MS + 90_000, intervalMs: 250, what: `every request of ${scope.config.redis.keyPrefix} to reach its outcome` },
  ).catch((error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}; last counts ${JSON.stringify(last)}`);
  });
  return last;
}

/**
 * The evaluation records by key, each with what does not depend on who evaluated it when; the
 * source offsets are checked against the records they name (a redelivered side may be either copy).
 */
async function evaluations(scope: TestScope, sources: Map<string, string>): Promise<Map<string, unknown>> {
  const byKey = new Map<string, unknown>();
  for (const record of await scope.read(scope.config.kafka.topics.evaluations)) {
    const decoded = decodeEvent(EvaluationRecordSchema, record.value);
    assert.ok(decoded.ok, 'evaluation records decode');
    const key = record.key?.toString() ?? '';
    assert.ok(!byKey.has(key), `${key} is evaluated once (${scope.config.redis.keyPrefix})`);
    const { evaluatedAt, provenance, ...contents } = decoded.value;
    assert.ok(evaluatedAt > 0);
    const { stable, candidate } = provenance.sources;
    assert.equal(sources.get(`${stable.topic}/${stable.partition}/${stable.offset}`), `${decoded.value.requestId}/stable`, `${key}: stable source`);
    assert.equal(sources.get(`${candidate.topic}/${candidate.partition}/${candidate.offset}`), `${decoded.value.requestId}/${decoded.value.arm}`, `${key}: candidate source`);
    byKey.set(key, { ...contents, provenance: { ...provenance, sources: undefined } });
  }
  return byKey;
}

describe('several join and evaluator instances', () => {
  it('produce exactly the same pairs, outcomes and evaluation records as one of each', async (t) => {
    const single = testScope(t, (id) => ({
      experiment: { id: `exp-${id}`, candidates: ARMS.map((name) => ({ name, baseUrl: 'http://127.0.0.1:1' })), join: { windowMs: WINDOW_MS } },
      join: { listen: { port: 0 }, sweepIntervalMs: 200 },
    }));
    const experiment = single.config.experiment;
    assert.ok(experiment);
    const topics = single.config.kafka.topics;
    // The same experiment on the same response topics, with its own group, queue, Redis prefix and output.
    const multi = testScope(t, (id) => ({
      kafka: { clientId: id, partitions: 3, topics: { ...topics, requests: `${id}.requests`, evaluations: `${id}.evaluations`, deadLetter: `${id}.dlq` } },
      experiment,
      join: { listen: { port: 0 }, sweepIntervalMs: 200 },
    }));
    await ensureTopics(single.kafka, [...Object.values(topics), multi.config.kafka.topics.evaluations, multi.config.kafka.topics.deadLetter], 3);

    const phases = [traffic(experiment.id, 'p1'), traffic(experiment.id, 'p2')];
    for (const scope of [single, multi]) for (const phase of phases) await account(scope, experiment.id, phase);
    // Pre-filled: the first phase is on the topics before any instance starts.
    await publish(single.kafka, single.config, phases[0] ?? traffic(experiment.id, 'p1'));
    const [one, three] = await Promise.all([deploy(t, single, 1), deploy(t, multi, 3)]);
    // The second phase once the three joins share the partitions, so each has work in hand.
    await waitStableGroup(multi.kafka, `${multi.config.kafka.clientId}-join`, 3);
    const eventsBefore = await Promise.all(three.joins.map(({ url }) => scrapeMetric(url, 'shadow_join_events_total')));
    await publish(single.kafka, single.config, phases[1] ?? traffic(experiment.id, 'p2'));

    const expected = Object.fromEntries(ARMS.map((arm) => [arm, phases.flatMap((phase) => phase.consumed).filter((entry) => entry.arm === arm).length]));
    const [countsOne, countsThree] = await Promise.all([drained(single, experiment.id, expected), drained(multi, experiment.id, expected)]);
    assert.deepEqual(countsThree, countsOne, 'the same outcome table');
    for (const arm of ARMS) {
      const counts = countsOne[arm];
      assert.ok(counts);
      assert.equal(OUTCOMES.reduce((sum, outcome) => sum + counts[outcome], 0), counts.consumed, `${arm}: consumed = Σ outcomes`);
      assert.equal(counts[Outcome.stableMissing], 2 * (PER_PHASE / 10), `${arm}: the orphans expired`);
      assert.equal(counts[Outcome.candidateError], arm === 'cand-a' ? 2 * (PER_PHASE / 10) : 0);
    }

    const sources = new Map<string, string>();
    for (const topic of [topics.stableResponses, topics.candidateResponses]) {
      for (const record of await single.read(topic)) {
        const event = JSON.parse(record.value?.toString() ?? '{}') as ResponseEvent;
        sources.set(`${topic}/${record.partition}/${record.offset}`, `${event.requestId}/${event.arm}`);
      }
    }
    const [recordsOne, recordsThree] = await Promise.all([evaluations(single, sources), evaluations(multi, sources)]);
    const evaluated = ARMS.reduce((sum, arm) => sum + (countsOne[arm]?.evaluated ?? 0), 0);
    assert.equal(recordsOne.size, evaluated, 'one record per evaluated pair');
    assert.deepEqual([...recordsThree.keys()].sort(), [...recordsOne.keys()].sort(), 'the same keys');
    for (const [key, contents] of recordsOne) assert.deepEqual(recordsThree.get(key), contents, `${key}: the same pair and figures`);

    // The work was really shared: every join read part of the second phase, and more than one evaluator evaluated.
    const eventsAfter = await Promise.all(three.joins.map(({ url }) => scrapeMetric(url, 'shadow_join_events_total')));
    const readByJoin = eventsAfter.map((after, i) => after - (eventsBefore[i] ?? 0));
    const byEvaluator = await Promise.all(three.evaluators.map(({ url }) => scrapeMetric(url, 'shadow_evaluator_evaluated_total')));
    t.diagnostic(`second phase events read by each join: ${readByJoin.join(', ')}; pairs evaluated by each evaluator: ${byEvaluator.join(', ')}`);
    assert.ok(readByJoin.every((count) => count > 0), `every join instance read its share (${readByJoin.join(', ')})`);
    assert.ok(byEvaluator.filter((count) => count > 0).length >= 2, `more than one evaluator evaluated (${byEvaluator.join(', ')})`);
    assert.equal(byEvaluator.reduce((sum, count) => sum + count, 0), evaluated, 'each pair evaluated once across the evaluators');
    assert.equal(await scrapeMetric(one.evaluators[0]?.url ?? '', 'shadow_evaluator_evaluated_total'), evaluated);
  });
});
