import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvaluationRecord } from '@shadow-replay/contracts';
import { EvaluationErrorCode, ReportSchema, buildReport, type OutcomeCounters, type ReportOptions } from '../src/index.js';
import { EXPERIMENT, evaluationRecord, records } from './fixtures.js';

function report(recordList: EvaluationRecord[], outcomes: Record<string, OutcomeCounters>, options?: ReportOptions) {
  const built = buildReport(
    {
      experimentId: EXPERIMENT,
      window: { from: 1_700_000_000_000, to: '2023-11-14T23:00:00Z' },
      generatedAt: new Date(1_700_000_500_000),
      records: recordList,
      outcomes,
    },
    options,
  );
  const parsed = ReportSchema.safeParse(built);
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
  return built;
}

describe('buildReport conservation', () => {
  it('balances when every consumed request has an outcome and every evaluated one a record', () => {
    const built = report(records(40), { cand: { consumed: 50, sampled_out: 7, filtered: 3, evaluated: 40 } });
    assert.equal(built.window.from, '2023-11-14T22:13:20.000Z');
    assert.equal(built.window.to, '2023-11-14T23:00:00.000Z');
    assert.equal(built.generatedAt, '2023-11-14T22:21:40.000Z');
    const { conservation } = built;
    assert.equal(conservation.balanced, true);
    assert.deepEqual(conservation.notes, []);
    assert.equal(conservation.consumed, 50);
    assert.equal(conservation.pending, 0);
    assert.equal(conservation.evaluatedRecords, 40);
    assert.equal(conservation.outcomes.sampled_out, 7);
    assert.equal(conservation.outcomes.shed_budget, 0);
    assert.deepEqual(conservation.byArm.cand, {
      consumed: 50,
      outcomes: { ...conservation.outcomes },
      pending: 0,
      records: 40,
      balanced: true,
    });
  });

  it('does not balance while requests are pending, and says so in the notes', () => {
    const built = report(records(35), { cand: { consumed: 50, sampled_out: 10, evaluated: 35 } });
    assert.equal(built.conservation.balanced, false);
    assert.equal(built.conservation.pending, 5);
    assert.equal(built.conservation.notes.length, 1);
    assert.match(built.conservation.notes[0]!, /^arm cand: 5 request\(s\) still pending .*has not drained$/);
  });

  it('does not balance when consumed differs from outcomes plus an explicit pending count', () => {
    const built = report(records(35), { cand: { consumed: 50, sampled_out: 10, evaluated: 35, pending: 0 } });
    assert.equal(built.conservation.balanced, false);
    assert.deepEqual(built.conservation.notes, ['arm cand: consumed (50) ≠ outcomes (45) + pending (0); 5 request(s) have no outcome']);
  });

  it('does not balance when the number of evaluation records differs from the evaluated counter', () => {
    const built = report(records(38), { cand: { consumed: 50, sampled_out: 10, evaluated: 40 } });
    assert.equal(built.conservation.balanced, false);
    assert.equal(built.conservation.byArm.cand!.balanced, false);
    assert.equal(built.conservation.notes.length, 1);
    assert.match(built.conservation.notes[0]!, /^arm cand: 38 evaluation record\(s\) but the evaluated counter is 40 /);
    assert.equal(built.arms[0]!.verdict.status, 'inconclusive');
    assert.match(built.arms[0]!.verdict.reasons[0]!, /conservation does not balance/);
  });

  it('reports an arm that has records but no counters, and only that arm is unbalanced', () => {
    const built = report([...records(30), ...records(30, { arm: 'other' })], { cand: { consumed: 30, evaluated: 30 } });
    assert.deepEqual(built.arms.map((arm) => arm.arm), ['cand', 'other']);
    assert.equal(built.conservation.byArm.cand!.balanced, true);
    assert.equal(built.conservation.byArm.other!.balanced, false);
    assert.equal(built.conservation.balanced, false);
    assert.equal(built.arms[0]!.verdict.status, 'pass');
  });

  it('counts a duplicated record key once and notes it', () => {
    const list = records(30);
    const built = report([...list, evaluationRecord(3, { evaluatedAt: 1_800_000_000_000 })], { cand: { consumed: 30, evaluated: 30 } });
    assert.equal(built.conservation.balanced, true);
    assert.equal(built.arms[0]!.counts.records, 30);
    assert.deepEqual(built.conservation.notes, ['1 duplicate evaluation record(s) counted once (the latest evaluatedAt kept)']);
  });

  it('rejects a record of another experiment and a negative counter', () => {
    const foreign = { ...evaluationRecord(1), experimentId: 'exp-2' };
    assert.throws(() => report([foreign], {}), { code: EvaluationErrorCode.invalidInput, message: /another experiment/ });
    assert.throws(() => report([], { cand: { consumed: -1 } }), { code: EvaluationErrorCode.invalidInput, message: /outcomes\.cand\.consumed/ });
  });
});

describe('buildReport figures', () => {
  it('computes latency, paired deltas and quality over the pairs where both sides answered ok', () => {
    const list = [
      ...Array.from({ length: 9 }, (_, i) => evaluationRecord(i, { stableE2e: 400, candidateE2e: 400 + 10 * i, exactMatch: i % 3 !== 0 })),
      evaluationRecord(9, { stableE2e: 400, candidateE2e: 5, candidateOutcome: 'error' }),
    ];
    const arm = report(list, { cand: { consumed: 10, evaluated: 10 } }).arms[0]!;
    assert.equal(arm.latency.e2eMs.candidate.n, 9);
    assert.equal(arm.latency.e2eMs.candidate.p50, 440);
    assert.equal(arm.latency.e2eMs.stable.max, 400);
    assert.equal(arm.deltas.e2eMs.n, 9);
    assert.deepEqual(arm.deltas.e2eMs.p50, { value: 40, ci95: null });
    assert.ok(Math.abs(arm.deltas.e2eMs.p99.value! - 79.2) < 1e-9);
    assert.deepEqual(arm.deltas.ttftMs.p50, { value: 10, ci95: null });
    assert.equal(arm.quality.n, 9);
    assert.ok(Math.abs(arm.quality.exactMatchRate! - 6 / 9) < 1e-12);
    assert.equal(arm.quality.meanLengthRatio, 1);
    assert.deepEqual(arm.errors.candidate, { n: 1, total: 10, rate: 0.1 });
    assert.deepEqual(arm.errors.stable, { n: 0, total: 10, rate: 0 });
    assert.deepEqual(arm.tokens.candidate, { n: 10, prompt: { sum: 1000, mean: 100 }, completion: { sum: 200, mean: 20 } });
    assert.ok(Math.abs(arm.cost.candidate!.totalUsd - 0.01) < 1e-12);
    assert.deepEqual(arm.judge, { n: 0, wins: 0, ties: 0, losses: 0, inconsistent: 0, winRate: null, ci95: null });
    assert.equal(arm.noise, null);
  });
});

describe('buildReport verdict', () => {
  it('is inconclusive below the minimum number of samples', () => {
    const verdict = report(records(10), { cand: { consumed: 10, evaluated: 10 } }).arms[0]!.verdict;
    assert.deepEqual(verdict, { status: 'inconclusive', reasons: ['only 10 evaluated pair(s); at least 30 are needed'] });
  });

  it('honours a configured minimum number of samples', () => {
    const verdict = report(records(10), { cand: { consumed: 10, evaluated: 10 } }, { minSamples: 10 }).arms[0]!.verdict;
    assert.equal(verdict.status, 'pass');
  });

  it('fails when the candidate error rate exceeds stable’s by more than half a percentage point', () => {
    const verdict = report(records(98), { cand: { consumed: 100, evaluated: 98, candidate_error: 2 } }).arms[0]!.verdict;
    assert.equal(verdict.status, 'fail');
    assert.equal(verdict.reasons[0], 'candidate error rate 2.00% vs stable 0.00% (+2.00 pp, gate: at most +0.50 pp)');
  });

  it('passes an error-rate gap exactly at the gate', () => {
    const verdict = report(records(199), { cand: { consumed: 200, evaluated: 199, candidate_error: 1 } }).arms[0]!.verdict;
    assert.equal(verdict.status, 'pass');
  });

  it('fails when the candidate p99 E2E is more than 1.2 times stable’s', () => {
    const verdict = report(records(30, { candidateE2e: 600 }), { cand: { consumed: 30, evaluated: 30 } }).arms[0]!.verdict;
    assert.equal(verdict.status, 'fail');
    assert.deepEqual(verdict.reasons, [
      "candidate p99 E2E 600.0 ms is 1.50× stable's 400.0 ms (gate: at most 1.20×)",
      'candidate error rate 0.00% vs stable 0.00% (+0.00 pp, within the +0.50 pp gate)',
    ]);
  });

  it('passes with a reason for every gate when nothing regresses', () => {
    const verdict = report(records(30, { candidateE2e: 420 }), { cand: { consumed: 30, evaluated: 30 } }).arms[0]!.verdict;
    assert.deepEqual(verdict, {
      status: 'pass',
      reasons: [
        'candidate error rate 0.00% vs stable 0.00% (+0.00 pp, within the +0.50 pp gate)',
        "candidate p99 E2E 420.0 ms is 1.05× stable's 400.0 ms, within the 1.20× gate",
      ],
    });
  });

  it('rejects a bad gate naming the option', () => {
    assert.throws(() => report([], {}, { minSamples: -1 }), { code: EvaluationErrorCode.invalidOptions, message: /minSamples must be/ });
  });
});
