import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationRecordSchema, Outcome, decodeEvent, evalQueuePrefix, pairJobId, type PairJob, type ResponseEvent } from '@shadow-replay/contracts';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { OutcomeStore, silentLogger, waitFor } from '@shadow-replay/platform';
import { Queue } from 'bullmq';
import { responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';

function pair(experimentId: string, requestId: string, candidate: ResponseEvent): PairJob {
  const source = { topic: 't', partition: 0, offset: '1' };
  return { schemaVersion: 1, experimentId, requestId, arm: 'cand', request: null, stable: responseEvent(requestId, 'stable', { content: 'Hello  World', e2eMs: 100 }), candidate, sources: { stable: source, candidate: source } };
}

describe('the evaluator', () => {
  it('publishes one EvaluationRecord per pair keyed by experiment/request/arm and settles it as evaluated; a pair that can never evaluate is eval_failed', async (t) => {
    const scope = testScope(t, (id) => ({
      experiment: { id: `exp-${id}`, candidates: [{ name: 'cand', baseUrl: 'http://127.0.0.1:1', prices: { inputPerMillion: 1, outputPerMillion: 2 } }], slices: { tenantHeader: 'x-org' } },
    }));
    const experimentId = scope.config.experiment?.id ?? '';
    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    for (const id of ['good', 'mismatch']) await outcomes.consume(experimentId, 'cand', id);
    const evaluator = new EvaluatorService({ settings: evaluatorSettings(scope.config, scope.env), log: silentLogger() });
    t.after(() => evaluator.close());
    await evaluator.start();
    const queue = new Queue(scope.config.redis.evalQueue, { connection: scope.redis, prefix: evalQueuePrefix(scope.config.redis.keyPrefix) });
    t.after(() => queue.close());
    // Replay copies the request's route, model, tenant and published headers onto the candidate's answer.
    const origin = { route: '/v1/chat/completions', model: 'llama-3.1-70b', tenant: 'from-event', headers: { 'x-org': 'acme' } };
    await queue.add('pair', pair(experimentId, 'good', { ...responseEvent('good', 'cand', { content: 'hello world', e2eMs: 130, experimentId }), origin }), { jobId: pairJobId(experimentId, 'good', 'cand'), attempts: 3 });
    // The candidate side belongs to another request: poison, not worth a retry.
    await queue.add('pair', pair(experimentId, 'mismatch', responseEvent('other', 'cand', { content: 'x', e2eMs: 10, experimentId })), { jobId: pairJobId(experimentId, 'mismatch', 'cand'), attempts: 3 });

    await waitFor(
      async () => {
        const counts = await outcomes.counts(experimentId, 'cand');
        return counts.evaluated === 1 && counts.eval_failed === 1;
      },
      { timeoutMs: 30_000, what: 'one evaluated and one failed pair' },
    );
    const failed = await queue.getJob(pairJobId(experimentId, 'mismatch', 'cand'));
    assert.equal(failed?.attemptsMade, 1, 'an unrecoverable pair is not retried');
    const records = await scope.read(scope.config.kafka.topics.evaluations);
    assert.equal(records.length, 1);
    assert.equal(records[0]?.key?.toString(), `${experimentId}/good/cand`);
    const decoded = decodeEvent(EvaluationRecordSchema, records[0]?.value);
    assert.ok(decoded.ok);
    const record = decoded.value;
    assert.equal(record.deltas.e2eMs, 30);
    assert.equal(record.comparison.exactMatch, false);
    assert.equal(record.comparison.normalizedMatch, true, 'whitespace and case are normalized');
    assert.equal(record.candidate.costUsd, (4 * 1 + 3 * 2) / 1e6);
    assert.equal(record.stable.costUsd, null, 'no stable prices configured');
    assert.deepEqual([record.route, record.model, record.tenant], ['/v1/chat/completions', 'llama-3.1-70b', 'acme'], 'slice keys, the tenant from the configured header');
    assert.equal(await outcomes.state(experimentId, 'cand', 'mismatch'), Outcome.evalFailed);
  });
});
