import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationRecordSchema } from '@shadow-replay/contracts';
import { EvaluationErrorCode, evaluatePair } from '../src/index.js';
import { EXPERIMENT, SOURCES, responseEvent } from './fixtures.js';

const base = {
  experimentId: EXPERIMENT,
  requestId: 'req-1',
  arm: 'cand',
  sources: SOURCES,
  evaluatorVersion: '0.1.0',
  now: 1_700_000_200_000,
};

describe('evaluatePair', () => {
  it('produces an EvaluationRecord that validates against the contract schema', () => {
    const record = evaluatePair({
      ...base,
      stable: responseEvent({ e2eMs: 400, ttftMs: 50 }),
      candidate: responseEvent({ arm: 'cand', e2eMs: 520, ttftMs: 45 }),
      prices: { candidate: { inputPerMillion: 1, outputPerMillion: 2 } },
    });
    const parsed = EvaluationRecordSchema.safeParse(record);
    assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
    assert.deepEqual(record.deltas, { e2eMs: 120, ttftMs: -5 });
    assert.equal(record.stable.costUsd, null);
    assert.equal(record.candidate.costUsd, (100 * 1 + 20 * 2) / 1_000_000);
    assert.equal(record.judge, null);
    assert.equal(record.evaluatedAt, base.now);
    assert.equal(record.provenance.candidateConfigHash, 'cfg-abc');
  });

  it('still validates when the candidate failed, with a null TTFT delta', () => {
    const record = evaluatePair({
      ...base,
      stable: responseEvent(),
      candidate: responseEvent({ arm: 'cand', outcome: 'error', ttftMs: null, usage: null }),
      candidateConfigHash: null,
    });
    assert.ok(EvaluationRecordSchema.safeParse(record).success);
    assert.equal(record.deltas.ttftMs, null);
    assert.equal(record.candidate.outcome, 'error');
    assert.equal(record.provenance.candidateConfigHash, null);
  });

  it("records when the request occurred, from the origin replay copies onto the candidate's answer, for windowed reports", () => {
    const origin = { route: '/v1/chat/completions', occurredAt: 1_700_000_000_123 };
    const record = evaluatePair({ ...base, stable: responseEvent(), candidate: { ...responseEvent({ arm: 'cand' }), origin } });
    assert.equal(record.provenance.requestOccurredAt, 1_700_000_000_123);
    assert.ok(EvaluationRecordSchema.safeParse(record).success);
    const older = evaluatePair({ ...base, stable: responseEvent(), candidate: responseEvent({ arm: 'cand' }) });
    assert.equal('requestOccurredAt' in older.provenance, false, 'an answer without a request time gives a record without one');
  });

  it('refuses to pair responses of different requests', () => {
    assert.throws(
      () => evaluatePair({ ...base, stable: responseEvent({ requestId: 'req-2' }), candidate: responseEvent({ arm: 'cand' }) }),
      { code: EvaluationErrorCode.pairMismatch, message: /stable\.requestId is req-2, expected req-1/ },
    );
  });
});
