import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Outcome, PENDING, evalQueuePrefix } from '@shadow-replay/contracts';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { Queue } from 'bullmq';
import { responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';

describe('the join window', () => {
  it('pairs each redelivered response once and settles candidates whose stable side never came as stable_missing', async (t) => {
    const scope = testScope(t, (id) => ({ experiment: { id: `exp-${id}`, candidates: [{ name: 'cand', baseUrl: 'http://127.0.0.1:1' }], join: { windowMs: 1_500 } } }));
    const experimentId = scope.config.experiment?.id ?? '';
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.stableResponses, topics.candidateResponses, topics.deadLetter], 3);
    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    // Replay counts a request as consumed before it calls the candidate.
    for (const id of ['paired', 'orphan']) await outcomes.consume(experimentId, 'cand', id);

    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    // Every event twice, as Kafka may redeliver after a crash.
    for (let copy = 0; copy < 2; copy++) {
      await producer.send({ topic: topics.stableResponses, messages: [{ key: 'paired', value: JSON.stringify(responseEvent('paired', 'stable')) }] });
      await producer.send({
        topic: topics.candidateResponses,
        messages: ['paired', 'orphan'].map((id) => ({ key: id, value: JSON.stringify(responseEvent(id, 'cand', { experimentId })) })),
      });
    }
    const join = new JoinService({ settings: joinSettings(scope.config, scope.env), log: silentLogger() });
    t.after(() => join.close());
    await join.start();

    await waitFor(async () => (await outcomes.counts(experimentId, 'cand'))[Outcome.stableMissing] === 1, { timeoutMs: 30_000, what: 'the orphan to expire' });
    const queue = new Queue(scope.config.redis.evalQueue, { connection: scope.redis, prefix: evalQueuePrefix(scope.config.redis.keyPrefix) });
    t.after(() => queue.close());
    const jobs = await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed']);
    assert.equal(jobs.length, 1, 'one job for the paired request, however often it was delivered');
    assert.equal((jobs[0]?.data as { requestId: string }).requestId, 'paired');
    const counts = await outcomes.counts(experimentId, 'cand');
    assert.equal(counts.consumed, 2);
    assert.equal(counts[PENDING], 1, 'the paired request waits for the evaluator');
    assert.equal(counts[Outcome.stableMissing], 1);
    assert.equal(await outcomes.state(experimentId, 'cand', 'orphan'), Outcome.stableMissing);
  });
});
