import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { EvaluationRecordSchema, decodeEvent, evalQueuePrefix, pairJobId, type EvaluationRecord, type PairJob } from '@shadow-replay/contracts';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { OutcomeStore, silentLogger, waitFor } from '@shadow-replay/platform';
import { createSimServer, type SimServerOptions } from '@shadow-replay/sim';
import { Queue } from 'bullmq';
import { responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';

/** Runs an evaluator with a judge on `pairs` and returns their records by request id. */
async function judgePairs(t: TestContext, judgeSim: SimServerOptions | 'down', pairs: Array<{ id: string; stable: string; candidate: string }>, attempts = 3) {
  let judgeUrl = 'http://127.0.0.1:9';
  let sim: ReturnType<typeof createSimServer> | undefined;
  if (judgeSim !== 'down') {
    sim = createSimServer(judgeSim);
    judgeUrl = (await sim.start()).url;
    const running = sim;
    t.after(() => running.close());
  }
  const scope = testScope(t, (id) => ({
    experiment: {
      id: `judge-${id}`.slice(0, 40),
      candidates: [{ name: 'cand', baseUrl: 'http://127.0.0.1:9' }],
      judge: { baseUrl: judgeUrl, model: 'sim-judge', prices: { inputPerMillion: 1, outputPerMillion: 1 }, timeouts: { totalMs: 2_000 } },
    },
  }));
  const experimentId = scope.config.experiment?.id ?? '';
  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  const evaluator = new EvaluatorService({ settings: evaluatorSettings(scope.config, scope.env), log: silentLogger() });
  t.after(() => evaluator.close());
  await evaluator.start();
  const queue = new Queue(scope.config.redis.evalQueue, { connection: scope.redis, prefix: evalQueuePrefix(scope.config.redis.keyPrefix) });
  t.after(() => queue.close());
  const source = { topic: 't', partition: 0, offset: '0' };
  for (const pair of pairs) {
    await outcomes.consume(experimentId, 'cand', pair.id);
    const job: PairJob = {
      schemaVersion: 1,
      experimentId,
      requestId: pair.id,
      arm: 'cand',
      request: { messages: [{ role: 'user', content: `question ${pair.id}` }] },
      stable: responseEvent(pair.id, 'stable', { content: pair.stable }),
      candidate: responseEvent(pair.id, 'cand', { content: pair.candidate, experimentId }),
      sources: { stable: source, candidate: source },
    };
    await queue.add('pair', job, { jobId: pairJobId(experimentId, pair.id, 'cand'), attempts, backoff: { type: 'fixed', delay: 10 } });
  }
  await waitFor(
    async () => {
      const counts = await outcomes.counts(experimentId, 'cand');
      return counts.evaluated + counts.eval_failed === pairs.length;
    },
    { timeoutMs: 60_000, what: 'every pair evaluated or failed' },
  );
  const records = new Map<string, EvaluationRecord>();
  for (const record of await scope.read(scope.config.kafka.topics.evaluations)) {
    const decoded = decodeEvent(EvaluationRecordSchema, record.value);
    assert.ok(decoded.ok);
    records.set(decoded.value.requestId, decoded.value);
  }
  return { records, sim, queue, experimentId, counts: await outcomes.counts(experimentId, 'cand') };
}

const verdictOf = (record: EvaluationRecord | undefined) => record?.judge?.verdict;

describe('the LLM judge in the evaluator', () => {
  it('ties identical answers without a call and lets the unbiased judge decide the rest consistently in both orders', async (t) => {
    const { records, sim } = await judgePairs(t, { profile: 'judge' }, [
      { id: 'same', stable: 'Paris is the capital.', candidate: 'Paris is the capital.' },
      { id: 'longer-candidate', stable: 'Paris.', candidate: 'Paris is the capital of France, on the Seine.' },
      { id: 'longer-stable', stable: 'Paris is the capital of France, on the Seine.', candidate: 'Paris.' },
    ]);
    assert.equal(verdictOf(records.get('same')), 'auto_tie');
    // The simulated judge prefers the longer answer whatever its position.
    assert.equal(verdictOf(records.get('longer-candidate')), 'win');
    assert.equal(verdictOf(records.get('longer-stable')), 'loss');
    assert.equal(sim?.stats().requestsTotal, 4, 'two calls per judged pair, none for identical answers');
    const judged = records.get('longer-candidate')?.judge as { calls: unknown[]; tokens: number; costUsd: number } | undefined;
    assert.equal(judged?.calls.length, 2);
    assert.ok((judged?.tokens ?? 0) > 0);
    assert.ok((judged?.costUsd ?? 0) > 0, 'judge cost is recorded');
    assert.match(records.get('longer-candidate')?.provenance.judgePromptHash ?? '', /^[0-9a-f]{16}$/);
  });

  it('turns a judge with a strong position bias into inconsistent ties instead of wins', async (t) => {
    const { records } = await judgePairs(t, { profile: 'judge', overrides: { judge: { positionBias: 1 } } }, [
      { id: 'p1', stable: 'short', candidate: 'a much longer and better answer' },
      { id: 'p2', stable: 'a much longer and better answer', candidate: 'short' },
    ]);
    assert.equal(verdictOf(records.get('p1')), 'inconsistent');
    assert.equal(verdictOf(records.get('p2')), 'inconsistent');
  });

  it('fails a pair whose judge stays unreachable as eval_failed, with the connection error as its reason, after its retries', async (t) => {
    const { records, queue, experimentId, counts } = await judgePairs(t, 'down', [{ id: 'x', stable: 'one', candidate: 'two' }], 2);
    assert.equal(records.size, 0, 'no record without a verdict');
    assert.equal(counts.eval_failed, 1);
    const jobId = pairJobId(experimentId, 'x', 'cand');
    // eval_failed is counted before BullMQ records the failure.
    await waitFor(async () => (await queue.getJob(jobId))?.finishedOn !== undefined, { timeoutMs: 10_000, what: 'the job to end' });
    const job = await queue.getJob(jobId);
    assert.equal(job?.attemptsMade, 2);
    assert.match(job?.failedReason ?? '', /^EVALUATOR_JUDGE_UNAVAILABLE: .* after 3 attempt\(s\): connect_error/);
  });
});
