/**
 * Bad-input fuzzing (issue 5): thousands of seeded hostile records — invalid JSON, wrong types,
 * missing ids, huge strings, deep nesting, invalid UTF-8, unknown schema ids, wrong magic bytes —
 * interleaved with valid events on every topic a service consumes, through the real services
 * and real Kafka. Each hostile record must come out of the dead-letter topic exactly once, with
 * its original bytes and a reason; each valid event must reach its normal outcome exactly once;
 * the services must still be ready at the end.
 *
 * `FUZZ_SEED=<n>` reproduces a run (the seed is printed); `FUZZ_RECORDS=<n>` sets the hostile
 * records per consumed topic (default 10,000).
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { DeadLetterHeader, Outcome, PENDING, PairJobSchema, ResponseEventSchema, decodeEvent, evalQueuePrefix, pairJobId } from '@shadow-replay/contracts';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, createRedis, ensureTopics, silentLogger, waitFor, type ConsumedRecord } from '@shadow-replay/platform';
import { ReplayService, replaySettings } from '@shadow-replay/replay';
import { createSimServer } from '@shadow-replay/sim';
import { Queue } from 'bullmq';
import type { Kafka } from 'kafkajs';
import { FOREIGN_MAPPING, candidateResponseSpec, foreignRequestSpec, requestEventSpec, stableResponseSpec } from './support/fuzz-json-specs.js';
import { FUZZ_ID_HEADER, Rng, buildStream, fuzzSettings, hostileJson, kindSummary, partitionCounts, produceRecords, validJson, type FuzzRecord, type JsonDecoderSpec } from './support/fuzz-records.js';
import { LLM_LOG_MAPPING, RegistryRecords, llmLogAvroSchema, llmLogJsonSchema } from './support/fuzz-registry-records.js';
import { registerSchema } from './support/registry.js';
import { testInfra, testScope, type TestScope } from './support/harness.js';
import { freePort, httpGet } from './support/service-process.js';

const settings = fuzzSettings();
const seeds = new Rng(settings.seed);
const PARTITIONS = 3;
const ARM = 'cand';
const REPRODUCE = `FUZZ_SEED=${settings.seed} FUZZ_RECORDS=${settings.records} npm test -- fuzz`;
/** Generous for a shared 2-core machine; a hang (a record that loops forever) fails here. */
const DRAIN_TIMEOUT_MS = 60_000 + settings.records * 6;
/** Problems listed in a failure message; the total count is always given. */
const SHOWN_PROBLEMS = 15;

process.stdout.write(`fuzz: seed ${settings.seed}, ${settings.records} hostile records per consumed topic (reproduce: ${REPRODUCE})\n`);

/** The hostile count and one valid event per `hostilePerValid` of them. */
function validCount(): number {
  return Math.max(1, Math.round(settings.records / settings.hostilePerValid));
}

function jsonStream(rng: Rng, spec: JsonDecoderSpec, validIds: readonly string[]): FuzzRecord[] {
  return buildStream(rng, {
    hostile: settings.records,
    valid: validIds.map((requestId) => validJson(rng, requestId, spec)),
    partitions: PARTITIONS,
    makeHostile: (random, index) => hostileJson(random, index, spec),
  });
}

function describeRun(t: TestContext, label: string, records: readonly FuzzRecord[]): void {
  const hostile = records.filter((record) => 'deadLetter' in record.expect);
  const bytes = records.reduce((sum, record) => sum + (record.value?.length ?? 0), 0);
  t.diagnostic(`${label}: ${hostile.length} hostile + ${records.length - hostile.length} valid records, ${(bytes / 1_048_576).toFixed(1)} MiB; seed ${settings.seed}; classes ${JSON.stringify(kindSummary(hostile))}`);
}

async function topicSize(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((sum, partition) => sum + Number(partition.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** A counter's value in Prometheus text, summed over the series whose labels include `labels`. */
function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ([-+\d.eE]+|NaN)$/.exec(line);
    if (match?.[1] !== name) continue;
    const series = match[2] ?? '';
    if (Object.entries(labels).every(([label, value]) => series.includes(`${label}="${value}"`))) total += Number(match[3]);
  }
  return total;
}

function sameBytes(expected: Buffer | string | null, actual: Buffer | null): boolean {
  if (expected === null || actual === null) return expected === actual;
  return Buffer.from(expected).equals(actual);
}

function header(record: ConsumedRecord, name: string): string | undefined {
  return record.headers[name]?.toString();
}

/**
 * Every hostile record of `records` has exactly one dead letter from `sourceTopic`: the
 * original key, value and headers, a reason that matches what its class must produce, the
 * stage, and the partition and offset it was read from; no valid record has one.
 */
function deadLetterProblems(records: readonly FuzzRecord[], offsets: Map<number, string>, deadLetters: readonly ConsumedRecord[], expected: { sourceTopic: string; stage: string; experimentId?: string }): string[] {
  const problems: string[] = [];
  const byId = new Map(records.map((record) => [String(record.id), record]));
  const seen = new Set<string>();
  for (const letter of deadLetters) {
    if (header(letter, DeadLetterHeader.sourceTopic) !== expected.sourceTopic) continue;
    const id = header(letter, FUZZ_ID_HEADER) ?? '?';
    const record = byId.get(id);
    const reason = header(letter, DeadLetterHeader.reason) ?? '';
    if (record === undefined) {
      problems.push(`dead letter without a known ${FUZZ_ID_HEADER} header (${id}): ${reason}`);
      continue;
    }
    const what = `record ${id} (${record.kind})`;
    if (seen.has(id)) problems.push(`${what} dead-lettered more than once`);
    seen.add(id);
    if (!('deadLetter' in record.expect)) {
      problems.push(`${what} is valid but was dead-lettered: ${reason}`);
      continue;
    }
    if (reason === '' || !record.expect.deadLetter.test(reason)) problems.push(`${what}: reason ${JSON.stringify(reason.slice(0, 300))} does not match ${String(record.expect.deadLetter)}`);
    if (header(letter, DeadLetterHeader.stage) !== expected.stage) problems.push(`${what}: stage ${header(letter, DeadLetterHeader.stage)}`);
    if (header(letter, DeadLetterHeader.partition) !== String(record.partition) || header(letter, DeadLetterHeader.offset) !== offsets.get(record.id)) {
      problems.push(`${what}: read from ${header(letter, DeadLetterHeader.partition)}/${header(letter, DeadLetterHeader.offset)}, produced to ${record.partition}/${offsets.get(record.id)}`);
    }
    if (expected.experimentId !== undefined && header(letter, DeadLetterHeader.experiment) !== expected.experimentId) problems.push(`${what}: experiment header ${header(letter, DeadLetterHeader.experiment)}`);
    if (!sameBytes(record.value, letter.value)) problems.push(`${what}: value is not the original bytes (${record.value?.length ?? 'null'} produced, ${letter.value?.length ?? 'null'} dead-lettered)`);
    if (!sameBytes(record.key, letter.key)) problems.push(`${what}: key is not the original bytes`);
    for (const [name, value] of Object.entries(record.headers)) {
      if (!name.startsWith('x-dlq-') && !sameBytes(value, Buffer.from(letter.headers[name] ?? ''))) problems.push(`${what}: header ${name} not kept`);
    }
  }
  for (const record of records) {
    if ('deadLetter' in record.expect && !seen.has(String(record.id))) problems.push(`record ${record.id} (${record.kind}) was not dead-lettered`);
  }
  return problems;
}

function assertNoProblems(problems: readonly string[], what: string): void {
  assert.deepEqual(problems.slice(0, SHOWN_PROBLEMS), [], `${problems.length} problems with ${what}; reproduce with ${REPRODUCE}`);
}

function assertExactlyOnce(actual: readonly string[], expected: readonly string[], what: string): void {
  const counts = new Map<string, number>();
  for (const id of actual) counts.set(id, (counts.get(id) ?? 0) + 1);
  const twice = [...counts].filter(([, count]) => count > 1).map(([id]) => id);
  const missing = expected.filter((id) => !counts.has(id));
  const unexpected = [...counts.keys()].filter((id) => !expected.includes(id));
  assert.deepEqual({ twice: twice.slice(0, SHOWN_PROBLEMS), missing: missing.slice(0, SHOWN_PROBLEMS), unexpected: unexpected.slice(0, SHOWN_PROBLEMS) }, { twice: [], missing: [], unexpected: [] }, `${what}: ${twice.length} twice, ${missing.length} missing, ${unexpected.length} unexpected; reproduce with ${REPRODUCE}`);
}

function requestIdsOf(records: readonly ConsumedRecord[], what: string): string[] {
  return records.map((record) => {
    const decoded = decodeEvent(ResponseEventSchema, record.value);
    assert.ok(decoded.ok, `${what}: ${decoded.ok ? '' : decoded.reason}`);
    return decoded.value.requestId;
  });
}

/** Checks that the topic now holds exactly what the stream put there: the expected offsets are right. */
async function assertProduced(scope: TestScope, topic: string, records: readonly FuzzRecord[]): Promise<void> {
  const admin = scope.kafka.admin();
  await admin.connect();
  try {
    const highs = new Map((await admin.fetchTopicOffsets(topic)).map((entry) => [entry.partition, Number(entry.high)]));
    for (const [partition, count] of partitionCounts(records)) assert.equal(highs.get(partition), count, `partition ${partition} of ${topic} holds what was produced`);
  } finally {
    await admin.disconnect();
  }
}

interface ReplayRun {
  scope: TestScope;
  records: FuzzRecord[];
  offsets: Map<number, string>;
  validIds: string[];
  experimentId: string;
  metrics: string;
}

/**
 * Runs replay with a simulated candidate over a request topic filled with `makeRecords`, until
 * every record is consumed and every valid request answered; checks readiness and reads the
 * metrics while it runs, then closes it.
 */
async function runReplay(t: TestContext, label: string, input: Record<string, unknown>, makeRecords: (scope: TestScope, validIds: string[]) => Promise<FuzzRecord[]>): Promise<ReplayRun> {
  const sim = createSimServer({ profile: 'fast' });
  const candidate = await sim.start();
  t.after(() => sim.close());
  const scope = testScope(t, (id) => ({
    experiment: { id: `exp-${id}`, startFrom: 'earliest', input, candidates: [{ name: ARM, baseUrl: candidate.url, rate: { concurrency: 64 } }] },
  }));
  const topics = scope.config.kafka.topics;
  const experimentId = scope.config.experiment?.id ?? '';
  await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.deadLetter], PARTITIONS);
  const validIds = Array.from({ length: validCount() }, (_, index) => `valid-${index}`);
  const began = Date.now();
  const records = await makeRecords(scope, validIds);
  describeRun(t, label, records);
  const generated = Date.now();
  const hostile = records.length - validIds.length;

  const replay = new ReplayService({ settings: replaySettings(scope.config, scope.env), log: silentLogger() });
  t.after(() => replay.close());
  const [, offsets] = await Promise.all([replay.start(), produceRecords(scope.kafka, topics.requests, records)]);
  await assertProduced(scope, topics.requests, records);
  const produced = Date.now();

  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  const progress = { consumed: 0, answered: 0, deadLetters: 0 };
  await waitFor(
    async () => {
      progress.consumed = (await outcomes.counts(experimentId, ARM)).consumed;
      progress.answered = await topicSize(scope.kafka, topics.candidateResponses);
      progress.deadLetters = await topicSize(scope.kafka, topics.deadLetter);
      return progress.consumed >= records.length && progress.answered >= validIds.length && progress.deadLetters >= hostile;
    },
    { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 250, what: `replay to consume ${records.length} records (${label})` },
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}: consumed ${progress.consumed} of ${records.length}, ${progress.answered} of ${validIds.length} answered, ${progress.deadLetters} dead letters for ${hostile} hostile records; reproduce with ${REPRODUCE}`);
  });

  assert.ok(replay.ready, 'replay is still in its consumer group');
  assert.equal((await httpGet(`${replay.httpUrl}/readyz`)).status, 200, 'replay still answers /readyz with 200');
  const metrics = (await httpGet(`${replay.httpUrl}/metrics`)).text;
  const counts = await outcomes.counts(experimentId, ARM);
  const { consumed, ...states } = counts;
  assert.deepEqual(
    { consumed, dead_letter: counts[Outcome.deadLetter], pending: counts[PENDING], others: Object.entries(states).filter(([state, count]) => state !== Outcome.deadLetter && state !== PENDING && count !== 0) },
    { consumed: records.length, dead_letter: hostile, pending: validIds.length, others: [] },
    `conservation: every consumed record is a dead letter or a valid request awaiting its evaluation; reproduce with ${REPRODUCE}`,
  );
  await replay.close();
  t.diagnostic(`${label}: generated in ${generated - began} ms, produced in ${produced - generated} ms, drained in ${Date.now() - produced} ms`);
  return { scope, records, offsets, validIds, experimentId, metrics };
}

/** Dead letters, candidate answers and the replay's own counters, after a run. */
async function assertReplayOutcomes(run: ReplayRun): Promise<void> {
  const { scope, records, offsets, validIds, experimentId, metrics } = run;
  const topics = scope.config.kafka.topics;
  const hostile = records.length - validIds.length;
  const deadLetters = await scope.read(topics.deadLetter);
  assert.equal(deadLetters.length, hostile, `one dead letter per hostile record; reproduce with ${REPRODUCE}`);
  assertNoProblems(deadLetterProblems(records, offsets, deadLetters, { sourceTopic: topics.requests, stage: 'replay', experimentId }), 'the dead letters');
  assertExactlyOnce(requestIdsOf(await scope.read(topics.candidateResponses), 'candidate answer'), validIds, 'each valid request answered by the candidate exactly once');
  assert.equal(metricValue(metrics, 'shadow_replay_outcomes_total', { experiment: experimentId, arm: ARM, outcome: Outcome.deadLetter }), hostile, 'the dead_letter outcome metric counts every hostile record');
  assert.equal(metricValue(metrics, 'shadow_replay_consumed_total', { experiment: experimentId }), records.length, 'the consumed metric counts every record');
}

describe(`hostile records (seed ${settings.seed}, ${settings.records} per consumed topic)`, () => {
  it('on the request topic are each dead-lettered once with a reason and their original bytes, while replay keeps answering the valid requests around them', async (t) => {
    const rng = seeds.fork('native');
    const run = await runReplay(t, 'native request events', { kind: 'native' }, (_scope, validIds) => Promise.resolve(jsonStream(rng, requestEventSpec, validIds)));
    await assertReplayOutcomes(run);
  });

  it('read through a field mapping are each dead-lettered once with a reason, while the valid foreign records become requests', async (t) => {
    const rng = seeds.fork('field-mapping');
    const run = await runReplay(t, 'field-mapped records', { kind: 'field-mapping', mapping: FOREIGN_MAPPING }, (_scope, validIds) => Promise.resolve(jsonStream(rng, foreignRequestSpec, validIds)));
    await assertReplayOutcomes(run);
  });

  it('in the Confluent wire format (wrong magic bytes, unknown schema ids, broken Avro and JSON payloads) are each dead-lettered once, while valid Avro and JSON Schema records are replayed', async (t) => {
    const rng = seeds.fork('schema-registry');
    const infra = testInfra();
    const run = await runReplay(t, 'Confluent-framed records', { kind: 'schema-registry', mapping: LLM_LOG_MAPPING }, async (scope, validIds) => {
      // Apicurio's ids are content ids: a unique namespace and title keep this run's schemas its own.
      const unique = scope.id.replace(/[^A-Za-z0-9]/g, '_');
      const namespace = `com.example.fuzz.${unique}`;
      const avro = await registerSchema(t, infra.schemaRegistryUrl, `${scope.id}-llm-log-avro-value`, { type: SchemaType.AVRO, schema: JSON.stringify(llmLogAvroSchema(namespace)) });
      const json = await registerSchema(t, infra.schemaRegistryUrl, `${scope.id}-llm-log-json-value`, { type: SchemaType.JSON, schema: JSON.stringify(llmLogJsonSchema(`LlmLog ${unique}`)) });
      const generator = new RegistryRecords({ avro, json }, namespace);
      return buildStream(rng, {
        hostile: settings.records,
        valid: validIds.map((requestId) => generator.valid(rng, requestId)),
        partitions: PARTITIONS,
        makeHostile: (random, index) => generator.hostile(random, index),
      });
    });
    await assertReplayOutcomes(run);
    // Combined records carry the live answer too: replay publishes it for the join, once per valid record.
    assertExactlyOnce(requestIdsOf(await run.scope.read(run.scope.config.kafka.topics.stableResponses), 'stable answer'), run.validIds, 'each valid record\'s live answer published exactly once');
  });

  it('on the stable and candidate response topics are each dead-lettered once, while join pairs the valid answers around them into one evaluation job each', async (t) => {
    const rng = seeds.fork('join');
    const port = await freePort();
    const scope = testScope(t, () => ({ join: { listen: { host: '127.0.0.1', port }, sweepIntervalMs: 200 } }));
    const topics = scope.config.kafka.topics;
    const experimentId = `exp-${scope.id}`;
    await ensureTopics(scope.kafka, [topics.stableResponses, topics.candidateResponses, topics.deadLetter], PARTITIONS);
    const validIds = Array.from({ length: validCount() }, (_, index) => `valid-${index}`);
    const stable = jsonStream(rng.fork('stable'), stableResponseSpec, validIds);
    const candidate = jsonStream(rng.fork('candidate'), candidateResponseSpec(experimentId, ARM), validIds);
    describeRun(t, 'stable answers', stable);
    describeRun(t, 'candidate answers', candidate);
    const hostile = stable.length + candidate.length - 2 * validIds.length;

    const join = new JoinService({ settings: joinSettings(scope.config, scope.env), log: silentLogger() });
    t.after(() => join.close());
    const [, stableOffsets, candidateOffsets] = await Promise.all([join.start(), produceRecords(scope.kafka, topics.stableResponses, stable), produceRecords(scope.kafka, topics.candidateResponses, candidate)]);
    await assertProduced(scope, topics.stableResponses, stable);
    await assertProduced(scope, topics.candidateResponses, candidate);

    const queueRedis = createRedis(testInfra().redisUrl, `${scope.id}-queue`);
    const queue = new Queue(scope.config.redis.evalQueue, { connection: queueRedis, prefix: evalQueuePrefix(scope.config.redis.keyPrefix) });
    t.after(async () => {
      await queue.close();
      await queueRedis.quit();
    });
    const jobs = async () => Object.values(await queue.getJobCounts()).reduce((sum, count) => sum + count, 0);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await jobs()) >= validIds.length && (await topicSize(scope.kafka, topics.deadLetter)) >= hostile, {
      timeoutMs: DRAIN_TIMEOUT_MS,
      intervalMs: 250,
      what: `join to pair ${validIds.length} answers and dead-letter ${hostile} records; reproduce with ${REPRODUCE}`,
    });

    assert.equal(join.ready, true, 'join is still in its consumer group');
    assert.equal((await httpGet(`${url}/readyz`)).status, 200, 'join still answers /readyz with 200');
    const metrics = (await httpGet(`${url}/metrics`)).text;
    await join.close();

    assert.equal(metricValue(metrics, 'shadow_join_dead_letters_total'), hostile, 'the dead-letter metric counts every hostile record');
    assert.equal(metricValue(metrics, 'shadow_join_pairs_total'), validIds.length, 'one pair per valid answer pair');
    assert.equal(metricValue(metrics, 'shadow_join_events_total', { side: 'stable' }), validIds.length, 'valid stable answers read');
    // A candidate answer without experimentId decodes (the field is optional on stable answers) and is dead-lettered after.
    const withoutExperiment = candidate.filter((record) => record.kind === 'missing-id/experimentId/deleted').length;
    assert.equal(metricValue(metrics, 'shadow_join_events_total', { side: 'candidate' }), validIds.length + withoutExperiment, 'decodable candidate answers read');

    const deadLetters = await scope.read(topics.deadLetter);
    assert.equal(deadLetters.length, hostile, `one dead letter per hostile record; reproduce with ${REPRODUCE}`);
    assertNoProblems(deadLetterProblems(stable, stableOffsets, deadLetters, { sourceTopic: topics.stableResponses, stage: 'join' }), 'the stable dead letters');
    assertNoProblems(deadLetterProblems(candidate, candidateOffsets, deadLetters, { sourceTopic: topics.candidateResponses, stage: 'join' }), 'the candidate dead letters');

    assert.equal(await jobs(), validIds.length, 'one evaluation job per valid pair, nothing else');
    const jobProblems: string[] = [];
    for (const requestId of validIds) {
      const job = await queue.getJob(pairJobId(experimentId, requestId, ARM));
      const parsed = PairJobSchema.safeParse(job?.data);
      if (!parsed.success) jobProblems.push(`${requestId}: ${job === undefined ? 'no job' : 'job data is not a PairJob'}`);
      else if (parsed.data.stable.requestId !== requestId || parsed.data.candidate.requestId !== requestId || parsed.data.arm !== ARM) jobProblems.push(`${requestId}: job pairs the wrong answers`);
    }
    assertNoProblems(jobProblems, 'the evaluation jobs');
  });
});
