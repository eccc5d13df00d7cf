/**
 * Retries of the LLM judge, end to end on real Kafka, Redis and BullMQ: answers go through the
 * join (which stamps each pair's job with `evaluator.attempts`) to the evaluator, whose judge is
 * the simulated model with faults switched on and off.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { EvaluationRecordSchema, Outcome, PAIR_JOB_BACKOFF, PENDING, decodeEvent, evalQueuePrefix, pairJobId, type EvaluationRecord } from '@shadow-replay/contracts';
import { computeConservation } from '@shadow-replay/evaluation';
import { EvaluatorService, evaluatorSettings, type JudgeCall } from '@shadow-replay/evaluator';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { createSimServer, type SimArrival, type SimServer } from '@shadow-replay/sim';
import { Queue } from 'bullmq';
import { responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';
import { freePort, scrapeMetric } from './support/service-process.js';

const ARM = 'cand';

/** One request to the simulated judge: which call it belongs to, when it came and what it got. */
interface JudgeArrival {
  call: string;
  at: number;
  fault: SimArrival['fault'];
}

interface Run {
  experimentId: string;
  outcomes: OutcomeStore;
  queue: Queue;
  sim: SimServer;
  arrivals: JudgeArrival[];
  evaluatorUrl: string;
  read: () => Promise<EvaluationRecord[]>;
  counters: () => Promise<Awaited<ReturnType<OutcomeStore['counts']>>>;
}

/**
 * Sends `pairs` differing answers through the join to an evaluator judging with a sim judge.
 * `onArrival` sees every judge request (after the sim drew its fault) and may change the sim.
 */
async function judgeThroughPipeline(
  t: TestContext,
  options: { pairs: number; judgeFaults: Record<string, number>; evaluator: Record<string, unknown>; judgeRetry: Record<string, unknown>; onArrival?: (count: number, sim: SimServer) => void },
): Promise<Run> {
  const arrivals: JudgeArrival[] = [];
  const sim: SimServer = createSimServer({
    profile: 'judge',
    overrides: { timeScale: 0, retryAfterSeconds: 1, ...options.judgeFaults },
    onChat: (arrival) => {
      const header = (name: string) => String(arrival.headers[name] ?? '');
      arrivals.push({ call: `${header('x-shadow-request-id')}/${header('x-shadow-judge-order')}`, at: arrival.receivedAt, fault: arrival.fault });
      options.onArrival?.(arrivals.length, sim);
    },
  });
  const { url } = await sim.start();
  t.after(() => sim.close());
  const port = await freePort();
  const scope = testScope(t, (id) => ({
    experiment: {
      id: `retry-${id}`.slice(0, 40),
      candidates: [{ name: ARM, baseUrl: 'http://127.0.0.1:9' }],
      judge: { baseUrl: url, model: 'sim-judge', timeouts: { totalMs: 5_000 }, retry: options.judgeRetry },
    },
    evaluator: { listen: { port }, ...options.evaluator },
  }));
  const experimentId = scope.config.experiment?.id ?? '';
  const topics = scope.config.kafka.topics;
  await ensureTopics(scope.kafka, [topics.stableResponses, topics.candidateResponses, topics.evaluations, topics.deadLetter], 3);
  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  const ids = Array.from({ length: options.pairs }, (_, i) => `req-${i}`);
  // Replay counts a request as consumed before it calls the candidate.
  for (const id of ids) await outcomes.consume(experimentId, ARM, id);

  const join = new JoinService({ settings: joinSettings(scope.config, scope.env), log: silentLogger() });
  t.after(() => join.close());
  const evaluator = new EvaluatorService({ settings: evaluatorSettings(scope.config, scope.env), log: silentLogger() });
  t.after(() => evaluator.close());
  await Promise.all([join.start(), evaluator.start()]);

  const producer = scope.kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  await producer.send({ topic: topics.stableResponses, messages: ids.map((id) => ({ key: id, value: JSON.stringify(responseEvent(id, 'stable', { content: `Short answer ${id}.` })) })) });
  await producer.send({
    topic: topics.candidateResponses,
    messages: ids.map((id) => ({ key: id, value: JSON.stringify(responseEvent(id, ARM, { experimentId, content: `A longer and more helpful answer to ${id}.` })) })),
  });
  const queue = new Queue(scope.config.redis.evalQueue, { connection: scope.redis, prefix: evalQueuePrefix(scope.config.redis.keyPrefix) });
  t.after(() => queue.close());
  return {
    experimentId,
    outcomes,
    queue,
    sim,
    arrivals,
    evaluatorUrl: `http://127.0.0.1:${port}`,
    read: async () =>
      (await scope.read(topics.evaluations)).map((record) => {
        const decoded = decodeEvent(EvaluationRecordSchema, record.value);
        assert.ok(decoded.ok);
        return decoded.value;
      }),
    counters: () => outcomes.counts(experimentId, ARM),
  };
}

/** Arrivals of each judge call (one order of one pair), in time order. */
function byCall(arrivals: readonly JudgeArrival[]): Map<string, JudgeArrival[]> {
  const calls = new Map<string, JudgeArrival[]>();
  for (const arrival of arrivals) calls.set(arrival.call, [...(calls.get(arrival.call) ?? []), arrival]);
  for (const list of calls.values()) list.sort((a, b) => a.at - b.at);
  return calls;
}

function balanced(counts: Awaited<ReturnType<Run['counters']>>, records: number): boolean {
  return computeConservation({ [ARM]: counts }, new Map([[ARM, records]]), [ARM]).balanced;
}

describe('judge retries', () => {
  it('retries a judge that fails transiently (5xx, then 429 with Retry-After) and evaluates every pair once it recovers', async (t) => {
    const pairs = 6;
    const run = await judgeThroughPipeline(t, {
      pairs,
      // The first three requests get a 500, the next three a 429 asking for one second, then the judge recovers.
      judgeFaults: { errorRate: 1 },
      onArrival: (count, sim) => {
        if (count === 3) sim.setProfile({ errorRate: 0, rateLimitRate: 1 });
        if (count === 6) sim.setProfile({ rateLimitRate: 0 });
      },
      evaluator: { attempts: 4, backoff: { delayMs: 200 } },
      judgeRetry: { attempts: 10, baseDelayMs: 20, maxDelayMs: 5_000 },
    });
    await waitFor(async () => (await run.counters())[Outcome.evaluated] === pairs, { timeoutMs: 60_000, what: 'every pair evaluated' });

    const counts = await run.counters();
    assert.equal(counts[Outcome.evalFailed], 0, 'no pair failed');
    assert.equal(counts[PENDING], 0);
    const records = await run.read();
    assert.equal(records.length, pairs);
    assert.ok(balanced(counts, records.length), 'conservation balances');
    for (const record of records) assert.equal(record.judge?.verdict, 'win', `${record.requestId}: the judge decided (the longer answer wins in both orders)`);

    // The sim's profile is read when a request arrives, so a request already arriving when it
    // switched keeps the old fault: at least three of each, and every one retried.
    const faults = run.arrivals.filter((arrival) => arrival.fault !== null);
    assert.ok(faults.filter((arrival) => arrival.fault === 'error').length >= 3, 'at least three 500s');
    const limited = faults.filter((arrival) => arrival.fault === 'rate_limit');
    assert.ok(limited.length >= 3, 'at least three 429s');
    assert.equal(run.sim.stats().requestsTotal, 2 * pairs + faults.length, 'two answered calls per pair, plus one request per transient failure');
    const attempts = records.flatMap((record) => (record.judge as unknown as { calls: JudgeCall[] }).calls.map((call) => call.attempts));
    assert.equal(attempts.length, 2 * pairs);
    assert.equal(
      attempts.reduce((sum, value) => sum + value, 0),
      run.sim.stats().requestsTotal,
      'each call records the requests it took',
    );
    assert.equal(await scrapeMetric(run.evaluatorUrl, 'shadow_evaluator_judge_requests_total', { outcome: 'retried' }), faults.length);
    assert.equal(await scrapeMetric(run.evaluatorUrl, 'shadow_evaluator_judge_requests_total', { outcome: 'ok' }), 2 * pairs);
    assert.equal(await scrapeMetric(run.evaluatorUrl, 'shadow_evaluator_judge_requests_total', { outcome: 'failed' }), 0);

    // Retry-After: 1 s, measured where the judge sees the requests.
    const calls = byCall(run.arrivals);
    for (const arrival of limited) {
      const list = calls.get(arrival.call)!;
      const next = list[list.indexOf(arrival) + 1];
      assert.ok(next !== undefined, `${arrival.call} was retried after its 429`);
      assert.ok(next.at - arrival.at >= 950, `${arrival.call} came back ${next.at - arrival.at} ms after a 429 asking for 1000 ms`);
    }
    for (const arrival of faults) {
      const list = calls.get(arrival.call)!;
      assert.ok(list.indexOf(arrival) < list.length - 1, `${arrival.call} was retried after its ${arrival.fault}`);
    }

    const job = await run.queue.getJob(pairJobId(run.experimentId, 'req-0', ARM));
    assert.equal(job?.opts.attempts, 4, 'the join stamps evaluator.attempts on the job');
    assert.equal(job?.opts.backoff && typeof job.opts.backoff === 'object' ? job.opts.backoff.type : undefined, PAIR_JOB_BACKOFF);
    assert.equal(job?.attemptsMade, 1, 'the call retries absorbed the faults: one run per pair');
  });

  it('ends every pair eval_failed exactly once, with its reason, when the judge keeps failing, after evaluator.attempts runs spaced by evaluator.backoff', async (t) => {
    const pairs = 3;
    const run = await judgeThroughPipeline(t, {
      pairs,
      judgeFaults: { errorRate: 1 },
      evaluator: { attempts: 2, backoff: { type: 'fixed', delayMs: 400, jitter: 0 } },
      judgeRetry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    });
    await waitFor(async () => (await run.counters())[Outcome.evalFailed] === pairs, { timeoutMs: 60_000, what: 'every pair eval_failed' });
    for (let i = 0; i < pairs; i++) {
      const jobId = pairJobId(run.experimentId, `req-${i}`, ARM);
      await waitFor(async () => (await run.queue.getJob(jobId))?.finishedOn !== undefined, { timeoutMs: 10_000, what: `the job of req-${i} to end` });
      const job = await run.queue.getJob(jobId);
      assert.equal(await job?.getState(), 'failed');
      assert.equal(job?.attemptsMade, 2, 'evaluator.attempts runs, no more');
      assert.match(job?.failedReason ?? '', /^EVALUATOR_JUDGE_UNAVAILABLE: the (stable_first|candidate_first) call failed after 2 attempt\(s\): http_status: HTTP 500/);
    }

    const counts = await run.counters();
    assert.equal(counts.consumed, pairs);
    assert.equal(counts[Outcome.evalFailed], pairs, 'each pair counted once');
    assert.equal(counts[Outcome.evaluated], 0);
    assert.equal(counts[PENDING], 0);
    const records = await run.read();
    assert.equal(records.length, 0, 'no record for a pair that failed');
    assert.ok(balanced(counts, records.length), 'conservation balances');
    assert.equal(await scrapeMetric(run.evaluatorUrl, 'shadow_evaluator_failed_total', { reason: 'EVALUATOR_JUDGE_UNAVAILABLE' }), pairs);
    // Bounded: 2 runs × 2 orders × 2 requests per call, per pair.
    assert.equal(run.sim.stats().requestsTotal, pairs * 2 * 2 * 2);
    assert.equal(await scrapeMetric(run.evaluatorUrl, 'shadow_evaluator_judge_requests_total', { outcome: 'failed' }), pairs * 2 * 2);

    // The second run of each call comes evaluator.backoff (a fixed 400 ms) after the first ended.
    for (const [call, list] of byCall(run.arrivals)) {
      assert.equal(list.length, 4, `${call}: two requests in each of two runs`);
      const gap = list[2]!.at - list[1]!.at;
      assert.ok(gap >= 350, `${call}: the second run came ${gap} ms after the first, with a 400 ms backoff`);
    }
  });
});
