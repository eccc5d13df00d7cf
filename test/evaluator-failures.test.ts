import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Outcome, PENDING, evalQueuePrefix, pairJobId, type PairJob } from '@shadow-replay/contracts';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { OutcomeStore, createRedis, silentLogger, waitFor } from '@shadow-replay/platform';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';
import { freePort, scrapeMetric } from './support/service-process.js';

const ARM = 'cand';

function pair(experimentId: string, requestId: string, candidateRequestId = requestId): PairJob {
  const source = { topic: 't', partition: 0, offset: '1' };
  return {
    schemaVersion: 1,
    experimentId,
    requestId,
    arm: ARM,
    request: null,
    stable: responseEvent(requestId, 'stable'),
    // A candidate side of another request is poison: it can never evaluate.
    candidate: responseEvent(candidateRequestId, ARM, { experimentId }),
    sources: { stable: source, candidate: source },
  };
}

async function setup(t: TestContext) {
  const port = await freePort();
  const scope = testScope(t, (id) => ({ experiment: { id: `exp-${id}`, candidates: [{ name: ARM, baseUrl: 'http://127.0.0.1:1' }] }, evaluator: { listen: { port } } }));
  const experimentId = scope.config.experiment?.id ?? '';
  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  const prefix = evalQueuePrefix(scope.config.redis.keyPrefix);
  const queue = new Queue(scope.config.redis.evalQueue, { connection: scope.redis, prefix });
  t.after(() => queue.close());
  const add = (data: PairJob) => queue.add('pair', data, { jobId: pairJobId(data.experimentId, data.requestId, data.arm), attempts: 3, backoff: { type: 'fixed', delay: 10 } });
  const startEvaluator = async () => {
    const evaluator = new EvaluatorService({ settings: evaluatorSettings(scope.config, scope.env), log: silentLogger() });
    t.after(() => evaluator.close());
    await evaluator.start();
    return evaluator;
  };
  const failedJob = async (requestId: string, after = 0): Promise<Job> => {
    let job: Job | undefined;
    await waitFor(
      async () => {
        job = await queue.getJob(pairJobId(experimentId, requestId, ARM));
        return job !== undefined && (await job.getState()) === 'failed' && (job.finishedOn ?? 0) > after;
      },
      { timeoutMs: 30_000, what: `the job of ${requestId} to fail` },
    );
    assert.ok(job);
    return job;
  };
  return { scope, experimentId, outcomes, queue, prefix, add, startEvaluator, failedJob, url: `http://127.0.0.1:${port}` };
}

describe('evaluator failures', () => {
  it('counts a poison pair eval_failed exactly once, even when its failure comes round again', async (t) => {
    const { scope, experimentId, outcomes, add, startEvaluator, failedJob, url } = await setup(t);
    await outcomes.consume(experimentId, ARM, 'poison');
    await add(pair(experimentId, 'poison', 'someone-else'));
    await startEvaluator();
    const first = await failedJob('poison');
    assert.match(first.failedReason, /^EVAL_PAIR_MISMATCH/);
    assert.equal(first.attemptsMade, 1, 'poison is not retried');
    assert.equal(await outcomes.state(experimentId, ARM, 'poison'), Outcome.evalFailed);

    // The failure comes round again (an operator's retry, a second failed event): the pair is
    // not evaluated again and not counted again.
    await first.retry('failed');
    const second = await failedJob('poison', first.finishedOn ?? 0);
    assert.match(second.failedReason, /^eval_failed: already recorded/);
    const counts = await outcomes.counts(experimentId, ARM);
    assert.equal(counts.consumed, 1);
    assert.equal(counts[Outcome.evalFailed], 1);
    assert.equal(counts[PENDING], 0);
    assert.equal(await scrapeMetric(url, 'shadow_evaluator_failed_total'), 1, 'the metric counts the pair once');
    assert.equal(await scrapeMetric(url, 'shadow_evaluator_failed_total', { reason: 'EVAL_PAIR_MISMATCH' }), 1, 'by the reason of its failure');
    assert.equal((await scope.read(scope.config.kafka.topics.evaluations)).length, 0);
  });

  it('fails without evaluating a pair whose failure an earlier worker counted before it died', async (t) => {
    const { scope, experimentId, outcomes, add, startEvaluator, failedJob, url } = await setup(t);
    // The earlier worker counted the last attempt's failure, then died before BullMQ recorded it;
    // the job comes back, and this time it would evaluate.
    await outcomes.consume(experimentId, ARM, 'counted');
    await outcomes.settle(experimentId, ARM, 'counted', Outcome.evalFailed);
    await add(pair(experimentId, 'counted'));
    await startEvaluator();
    const job = await failedJob('counted');
    assert.match(job.failedReason, /^eval_failed: already recorded/);
    assert.equal((await scope.read(scope.config.kafka.topics.evaluations)).length, 0, 'no evaluation record for a request counted eval_failed');
    const counts = await outcomes.counts(experimentId, ARM);
    assert.equal(counts[Outcome.evalFailed], 1);
    assert.equal(counts[Outcome.evaluated], 0);
    assert.equal(await scrapeMetric(url, 'shadow_evaluator_failed_total'), 0, 'counted by the earlier worker, not again');
  });

  it('counts at start a failure BullMQ recorded but no evaluator counted', async (t) => {
    const { scope, experimentId, outcomes, add, startEvaluator, failedJob, prefix, url } = await setup(t);
    await outcomes.consume(experimentId, ARM, 'uncounted');
    await outcomes.consume(experimentId, ARM, 'evaluated');
    // A worker that fails the job and dies before counting it: BullMQ alone, no evaluator.
    const connection = createRedis(scope.env.REDIS_URL ?? '', 'dying-worker');
    const dying = new Worker(scope.config.redis.evalQueue, () => Promise.reject(new UnrecoverableError('EVAL_PAIR_MISMATCH: sides of different requests')), { connection, prefix });
    t.after(async () => {
      await dying.close();
      await connection.quit();
    });
    await add(pair(experimentId, 'uncounted', 'someone-else'));
    await failedJob('uncounted');
    await dying.close();
    assert.equal(await outcomes.state(experimentId, ARM, 'uncounted'), PENDING, 'left pending by the dead worker');

    await add(pair(experimentId, 'evaluated'));
    await startEvaluator();
    await waitFor(async () => (await outcomes.state(experimentId, ARM, 'uncounted')) === Outcome.evalFailed, { timeoutMs: 30_000, what: 'the uncounted failure to be counted' });
    await waitFor(async () => (await outcomes.state(experimentId, ARM, 'evaluated')) === Outcome.evaluated, { timeoutMs: 30_000, what: 'the good pair to be evaluated' });
    const counts = await outcomes.counts(experimentId, ARM);
    assert.deepEqual({ consumed: counts.consumed, evaluated: counts.evaluated, failed: counts.eval_failed, pending: counts[PENDING] }, { consumed: 2, evaluated: 1, failed: 1, pending: 0 });
    assert.equal(await scrapeMetric(url, 'shadow_evaluator_failed_total', { reason: 'EVAL_PAIR_MISMATCH' }), 1);
  });
});
