import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { DeadLetterHeader, Outcome, PENDING, ResponseEventSchema, decodeEvent } from '@shadow-replay/contracts';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { ReplayService, replaySettings } from '@shadow-replay/replay';
import { createSimServer } from '@shadow-replay/sim';
import { requestEvent } from './support/events.js';
import { testScope } from './support/harness.js';

/**
 * A replay service on one arm (`cand`, an instant simulated model) that reads from the start,
 * its topics with one partition, and a producer to write the request topic; not started.
 */
async function replayOnOneArm(t: TestContext, replayConfig: Record<string, unknown>, experiment: (id: string) => Record<string, unknown> = () => ({})) {
  const sim = createSimServer({ profile: 'fast' });
  const candidate = await sim.start();
  t.after(() => sim.close());
  const scope = testScope(t, (id) => ({
    replay: replayConfig,
    experiment: { id: `exp-${id}`, startFrom: 'earliest', candidates: [{ name: 'cand', baseUrl: candidate.url }], ...experiment(id) },
  }));
  const topics = scope.config.kafka.topics;
  const replay = new ReplayService({ settings: replaySettings(scope.config, scope.env), log: silentLogger() });
  t.after(() => replay.close());
  await ensureTopics(scope.kafka, [topics.requests, topics.candidateResponses, topics.deadLetter], 1);
  const producer = scope.kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  return { scope, topics, replay, producer };
}

describe('poison request events', () => {
  it('go to the dead-letter topic with a reason header and are counted, while replay keeps consuming', async (t) => {
    const { scope, topics, replay, producer } = await replayOnOneArm(t, {});
    const schemaInvalid = { ...requestEvent('bad-schema'), body: { messages: 'not a list' } };
    await producer.send({
      topic: topics.requests,
      messages: [
        { key: 'broken', value: '{"requestId": "broken", ', headers: { trace: 'abc' } },
        { key: 'bad-schema', value: JSON.stringify(schemaInvalid) },
        { key: 'good-1', value: JSON.stringify(requestEvent('good-1')) },
        { key: 'good-2', value: JSON.stringify(requestEvent('good-2')) },
      ],
    });
    await replay.start();

    const experimentId = scope.config.experiment?.id ?? '';
    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(async () => (await outcomes.counts(experimentId, 'cand')).consumed === 4, { timeoutMs: 60_000, what: 'four consumed requests' });
    await waitFor(async () => (await scope.read(topics.candidateResponses)).length === 2, { timeoutMs: 60_000, what: 'two candidate responses' });

    const deadLetters = await scope.read(topics.deadLetter);
    assert.equal(deadLetters.length, 2);
    const byKey = new Map(deadLetters.map((record) => [record.key?.toString(), record]));
    const broken = byKey.get('broken');
    assert.ok(broken);
    assert.equal(broken.value?.toString(), '{"requestId": "broken", ', 'the original bytes are kept');
    assert.match(String(broken.headers[DeadLetterHeader.reason]), /^invalid_json: /);
    assert.equal(String(broken.headers[DeadLetterHeader.stage]), 'replay');
    assert.equal(String(broken.headers[DeadLetterHeader.sourceTopic]), topics.requests);
    assert.equal(String(broken.headers.trace), 'abc');
    const invalid = byKey.get('bad-schema');
    assert.ok(invalid);
    assert.match(String(invalid.headers[DeadLetterHeader.reason]), /^schema_invalid: body\.messages/);

    const answered = (await scope.read(topics.candidateResponses)).map((record) => {
      const decoded = decodeEvent(ResponseEventSchema, record.value);
      assert.ok(decoded.ok);
      return decoded.value.requestId;
    });
    assert.deepEqual(answered.sort(), ['good-1', 'good-2']);
    const counts = await outcomes.counts(experimentId, 'cand');
    assert.equal(counts[Outcome.deadLetter], 2);
  });

  it('that fill the broker\'s size limit are dead-lettered without their value instead of stopping the partition', async (t) => {
    const { scope, topics, replay, producer } = await replayOnOneArm(t, {});
    // The broker's default message.max.bytes is 1 MiB + 12 bytes for a whole record batch: this
    // record fits, with the dead letter's x-dlq-* headers on top it does not.
    const brokerLimit = 1_048_588;
    const big = Buffer.alloc(brokerLimit - 200, 'x');
    big[0] = 0x7b;
    await producer.send({ topic: topics.requests, messages: [{ key: 'huge', value: big, headers: { trace: 'abc' } }] });
    await producer.send({ topic: topics.requests, messages: [{ key: 'after', value: JSON.stringify(requestEvent('after')) }] });
    await replay.start();

    await waitFor(async () => (await scope.read(topics.candidateResponses)).length === 1, { timeoutMs: 60_000, what: 'the valid request after the huge one answered' });
    const deadLetters = await scope.read(topics.deadLetter);
    assert.equal(deadLetters.length, 1, 'dead-lettered once');
    const [letter] = deadLetters;
    assert.ok(letter);
    assert.equal(letter.value, null, 'the value is left out');
    assert.equal(letter.key?.toString(), 'huge');
    assert.equal(String(letter.headers.trace), 'abc', 'the original headers are kept when they fit');
    assert.match(String(letter.headers[DeadLetterHeader.reason]), /^invalid_json: /);
    assert.equal(String(letter.headers[DeadLetterHeader.omitted]), `value (${big.length} bytes): over the broker's message size limit`);
    assert.equal(String(letter.headers[DeadLetterHeader.sourceTopic]), topics.requests);
    assert.equal(String(letter.headers[DeadLetterHeader.offset]), '0', 'where the original still is');
    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    const counts = await outcomes.counts(scope.config.experiment?.id ?? '', 'cand');
    assert.equal(counts[Outcome.deadLetter], 1);
    assert.equal(counts.consumed, 2);
  });

  it('include a request whose candidate answer is over replay.maxAnswerBytes: counted dead_letter with a reason, the others answered', async (t) => {
    const { scope, topics, replay, producer } = await replayOnOneArm(t, { maxAnswerBytes: 4096 });
    const longPrompt = requestEvent('long', { body: { messages: [{ role: 'user', content: 'words '.repeat(1_000) }] } });
    await producer.send({ topic: topics.requests, messages: [longPrompt, requestEvent('short')].map((event) => ({ key: event.requestId, value: JSON.stringify(event) })) });
    await replay.start();

    const experimentId = scope.config.experiment?.id ?? '';
    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(async () => (await outcomes.counts(experimentId, 'cand'))[Outcome.deadLetter] === 1, { timeoutMs: 60_000, what: 'the long request counted dead_letter' });
    await waitFor(async () => (await scope.read(topics.candidateResponses)).length === 1, { timeoutMs: 60_000, what: 'the short request answered' });
    assert.equal((await scope.read(topics.candidateResponses))[0]?.key?.toString(), 'short');
    const [letter, ...more] = await scope.read(topics.deadLetter);
    assert.equal(more.length, 0);
    assert.equal(letter?.key?.toString(), 'long');
    assert.match(String(letter?.headers[DeadLetterHeader.reason]), /^too_large: the answer of arm cand is \d+ bytes \(with the \d+-byte request it carries\), over replay\.maxAnswerBytes 4096; the request is counted dead_letter$/);
    assert.deepEqual(JSON.parse(letter?.value?.toString() ?? '{}'), longPrompt, 'the request record as it was read');
    const counts = await outcomes.counts(experimentId, 'cand');
    assert.equal(counts.consumed, 2);
    assert.equal(counts[PENDING], 1, 'the short one waits for the join and the evaluator, which this test does not run');
  });

  it('include a combined record whose live answer is over replay.maxAnswerBytes: counted dead_letter, no candidate called', async (t) => {
    const { scope, replay, producer } = await replayOnOneArm(t, { maxAnswerBytes: 4096 }, (id) => ({
      input: { kind: 'field-mapping', topics: [`${id}.llm-log`], mapping: { requestId: '/id', messages: '/messages', stable: { content: '/answer', latencyMs: '/ms' } } },
    }));
    const tapped = `${scope.id}.llm-log`;
    await ensureTopics(scope.kafka, [tapped], 1);
    const messages = [{ role: 'user', content: 'q' }];
    await producer.send({
      topic: tapped,
      messages: [
        { key: 'long', value: JSON.stringify({ id: 'long', messages, answer: 'word '.repeat(2_000), ms: 120 }) },
        { key: 'short', value: JSON.stringify({ id: 'short', messages, answer: 'a short answer', ms: 80 }) },
      ],
    });
    await replay.start();
    const topics = scope.config.kafka.topics;
    const experimentId = scope.config.experiment?.id ?? '';
    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(async () => (await scope.read(topics.candidateResponses)).length === 1 && (await outcomes.counts(experimentId, 'cand'))[Outcome.deadLetter] === 1, {
      timeoutMs: 60_000,
      what: 'the short record replayed and the long one counted dead_letter',
    });
    assert.deepEqual((await scope.read(topics.stableResponses)).map((record) => record.key?.toString()), ['short'], 'only the short live answer published');
    assert.equal((await scope.read(topics.candidateResponses))[0]?.key?.toString(), 'short', 'no candidate call for the long one');
    const [letter, ...more] = await scope.read(topics.deadLetter);
    assert.equal(more.length, 0);
    assert.equal(letter?.key?.toString(), 'long');
    assert.match(String(letter?.headers[DeadLetterHeader.reason]), /^too_large: the live answer of this record is \d+ bytes as a stable ResponseEvent, over replay\.maxAnswerBytes 4096; the request is counted dead_letter and not replayed$/);
  });
});
