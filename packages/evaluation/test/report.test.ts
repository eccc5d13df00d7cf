import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvaluationRecord } from '@shadow-replay/contracts';
import {
  DEFAULT_BOOTSTRAP_SEED,
  EvaluationErrorCode,
  ReportSchema,
  TOO_FEW_FOR_P99_INTERVAL,
  buildReport,
  wilsonInterval,
  type OutcomeCounters,
  type ReportOptions,
} from '../src/index.js';
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
    const built = report([...records(400), ...records(30, { arm: 'other' })], { cand: { consumed: 400, evaluated: 400 } }, { maxErrorRateIncrease: 0.02 });
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
    assert.equal(arm.deltas.e2eMs.p50.value, 40);
    assert.ok(Math.abs(arm.deltas.e2eMs.p99.value! - 79.2) < 1e-9);
    assert.deepEqual(arm.deltas.ttftMs.p50, { value: 10, ci95: { low: 10, high: 10 } });
    assert.equal(arm.quality.n, 9);
    assert.ok(Math.abs(arm.quality.exactMatchRate! - 6 / 9) < 1e-12);
    assert.equal(arm.quality.meanLengthRatio, 1);
    assert.deepEqual(arm.tokens.candidate, { n: 10, prompt: { sum: 1000, mean: 100 }, completion: { sum: 200, mean: 20 } });
    assert.ok(Math.abs(arm.cost.candidate!.totalUsd - 0.01) < 1e-12);
    assert.deepEqual(arm.judge, { n: 0, wins: 0, ties: 0, losses: 0, inconsistent: 0, winRate: null, ci95: null, parseErrors: 0, errors: 0, notSampled: 0, calls: 0, retries: 0, tokens: 0, costUsd: null });
    assert.equal(arm.noise, null);
  });

  it('gives the median delta a paired bootstrap interval and withholds the p99 intervals below 368 pairs, saying why', () => {
    const list = Array.from({ length: 9 }, (_, i) => evaluationRecord(i, { stableE2e: 400, candidateE2e: 400 + 10 * i }));
    const { e2eMs } = report(list, { cand: { consumed: 9, evaluated: 9 } }).arms[0]!.deltas;
    // Deltas 0, 10, …, 80: a resample's median is one of them, so the interval ends are too.
    assert.ok(e2eMs.p50.ci95!.low < 40 && e2eMs.p50.ci95!.high > 40, JSON.stringify(e2eMs.p50));
    assert.ok([e2eMs.p50.ci95!.low, e2eMs.p50.ci95!.high].every((end) => end % 10 === 0 && end >= 0 && end <= 80));
    // Stable is 400 throughout, so the ratio is candidate p99 / 400: 479.2 / 400.
    assert.ok(Math.abs(e2eMs.p99Ratio.value! - 479.2 / 400) < 1e-12);
    for (const estimate of [e2eMs.p99, e2eMs.p99Ratio]) {
      assert.equal(estimate.ci95, null);
      assert.equal(estimate.note, TOO_FEW_FOR_P99_INTERVAL);
    }
    assert.match(TOO_FEW_FOR_P99_INTERVAL, /^too few samples above p99 for an interval \(a 95% interval of a p99 needs at least 368 pairs\)$/);
  });

  it('gives the p99 delta a distribution-free interval and the p99 ratio a paired bootstrap one from 368 pairs on', () => {
    const list = Array.from({ length: 368 }, (_, i) => evaluationRecord(i, { stableE2e: 400 + i, candidateE2e: 400 + 2 * i }));
    const { e2eMs } = report(list, { cand: { consumed: 368, evaluated: 368 } }).arms[0]!.deltas;
    // Deltas 0…367: the order statistics of fractional ranks 360.68… and 367.995…, as scipy 1.17's
    // brentq on betainc(k, n + 1 − k, 0.99) = 0.975 and 0.025 gives them.
    assert.ok(Math.abs(e2eMs.p99.ci95!.low - 359.68254502647613) < 1e-6 && Math.abs(e2eMs.p99.ci95!.high - 366.99542264241944) < 1e-6, JSON.stringify(e2eMs.p99));
    assert.equal(e2eMs.p99.note, undefined);
    assert.ok(e2eMs.p99Ratio.ci95!.low <= e2eMs.p99Ratio.value! && e2eMs.p99Ratio.value! <= e2eMs.p99Ratio.ci95!.high, JSON.stringify(e2eMs.p99Ratio));
  });

  it('gives the error rates Wilson intervals and their difference a Newcombe interval', () => {
    const list = [...records(9), evaluationRecord(9, { candidateOutcome: 'error' })];
    const { errors } = report(list, { cand: { consumed: 10, evaluated: 10 } }).arms[0]!;
    assert.deepEqual(errors.stable, { n: 0, total: 10, rate: 0, ci95: { low: 0, high: 0.2775401687666166 } });
    assert.equal(errors.candidate.rate, 0.1);
    near(errors.candidate.ci95!, { low: 0.01787574951572113, high: 0.4041563854975721 });
    assert.equal(errors.difference.value, 0.1);
    near(errors.difference.ci95!, { low: -0.18943555033306916, high: 0.40415638549757205 });
  });

  it('gives every quality rate a Wilson interval, and reads the additive comparison fields where records carry them', () => {
    const extras = (i: number) => ({
      toolCallAgreement: i !== 0,
      editSimilarity: i < 4 ? 1 : 0.5,
      rougeLF1: 0.8,
      jsonValid: { stable: i < 5 ? true : null, candidate: i < 5 ? i !== 1 : null },
      jsonDiff: i < 5 && i !== 1 ? { added: 0, removed: 0, changed: i === 2 ? 1 : 0, examples: [] } : null,
      refusal: { stable: false, candidate: i === 3 },
    });
    const list = [
      ...Array.from({ length: 8 }, (_, i) => evaluationRecord(i, { exactMatch: i % 3 !== 0, comparison: extras(i) })),
      // Written by an older evaluator: the v1 fields only. And one malformed additive field.
      evaluationRecord(8),
      evaluationRecord(9, { comparison: { editSimilarity: 'high', refusal: { stable: false, candidate: false } } }),
    ];
    const { quality } = report(list, { cand: { consumed: 10, evaluated: 10 } }).arms[0]!;
    assert.equal(quality.n, 10);
    assert.deepEqual(quality.exactMatch, { n: 10, count: 7, rate: 0.7, ci95: wilsonInterval(7, 10) });
    assert.equal(quality.exactMatchRate, quality.exactMatch.rate);
    assert.deepEqual(quality.toolCallAgreement, { n: 8, count: 7, rate: 7 / 8, ci95: wilsonInterval(7, 8) });
    assert.equal(quality.editSimilarity.n, 8);
    assert.equal(quality.editSimilarity.mean, 0.75);
    assert.ok(quality.editSimilarity.ci95!.low < 0.75 && quality.editSimilarity.ci95!.high > 0.75);
    near(quality.rougeLF1.ci95!, { low: 0.8, high: 0.8 });
    assert.deepEqual(quality.jsonValid.stable, { n: 5, count: 5, rate: 1, ci95: wilsonInterval(5, 5) });
    assert.deepEqual(quality.jsonValid.candidate, { n: 5, count: 4, rate: 0.8, ci95: wilsonInterval(4, 5) });
    assert.deepEqual(quality.jsonEqual, { n: 4, count: 3, rate: 0.75, ci95: wilsonInterval(3, 4) });
    assert.deepEqual(quality.refusal.stable, { n: 9, count: 0, rate: 0, ci95: wilsonInterval(0, 9) });
    assert.deepEqual(quality.refusal.candidate, { n: 9, count: 1, rate: 1 / 9, ci95: wilsonInterval(1, 9) });
  });

  it('leaves rates and intervals null when there is nothing to rate', () => {
    const arm = report([], { cand: { consumed: 0 } }).arms[0]!;
    assert.deepEqual(arm.quality.exactMatch, { n: 0, count: 0, rate: null, ci95: null });
    assert.deepEqual(arm.deltas.e2eMs, { n: 0, p50: { value: null, ci95: null }, p99: { value: null, ci95: null }, p99Ratio: { value: null, ci95: null } });
    assert.equal(arm.judge.ci95, null);
    assert.deepEqual(arm.errors.difference, { value: null, ci95: null });
  });
});

describe('buildReport statistics', () => {
  // Enough pairs for a p99 ratio interval, which moves with the seed.
  const list = Array.from({ length: 400 }, (_, i) => evaluationRecord(i, { stableE2e: 300 + ((i * 37) % 200), candidateE2e: 320 + ((i * 53) % 260) }));
  const outcomes = { cand: { consumed: 400, evaluated: 400 } };

  it('records the seed, the number of resamples and the methods, with a fixed default seed', () => {
    const { statistics } = report(list, outcomes);
    assert.equal(statistics.seed, DEFAULT_BOOTSTRAP_SEED);
    assert.equal(statistics.bootstrapIterations, 2000);
    assert.equal(statistics.confidence, 0.95);
    assert.match(statistics.methods.rates, /Wilson/);
    assert.match(statistics.methods.rateDifference, /Newcombe/);
    assert.match(statistics.methods.winRate!, /ties \/ 4n/);
    assert.match(statistics.methods.tailQuantiles!, /Hutson 1999.*368 pairs/);
    assert.equal(report(list, outcomes, { seed: 17, bootstrapIterations: 500 }).statistics.seed, 17);
  });

  it('is identical for the same seed whatever order the records arrive in, and moves only the intervals for another seed', () => {
    const first = report(list, outcomes, { seed: 17 });
    assert.deepEqual(report([...list].reverse(), outcomes, { seed: 17 }), first);
    const other = report(list, outcomes, { seed: 18 });
    assert.notDeepEqual(other.arms[0]!.deltas, first.arms[0]!.deltas);
    assert.equal(other.arms[0]!.deltas.e2eMs.p50.value, first.arms[0]!.deltas.e2eMs.p50.value);
    const a = first.arms[0]!.deltas.e2eMs.p50.ci95!;
    const b = other.arms[0]!.deltas.e2eMs.p50.ci95!;
    const width = a.high - a.low;
    assert.ok(Math.abs(a.low - b.low) <= width / 2 && Math.abs(a.high - b.high) <= width / 2, JSON.stringify({ a, b }));
  });

  it('gives an arm the same intervals whether or not other arms are in the report', () => {
    const alone = report(list, outcomes).arms[0]!;
    const withOther = report([...list, ...records(30, { arm: 'other' })], { ...outcomes, other: { consumed: 30, evaluated: 30 } }).arms[0]!;
    assert.deepEqual(withOther, alone);
  });

  it('rejects a seed outside 32 bits and too few resamples, naming the option', () => {
    assert.throws(() => report(list, outcomes, { seed: -1 }), { code: EvaluationErrorCode.invalidOptions, message: /seed must be/ });
    assert.throws(() => report(list, outcomes, { bootstrapIterations: 50 }), { code: EvaluationErrorCode.invalidOptions, message: /bootstrapIterations must be/ });
  });
});

describe('buildReport verdict', () => {
  it('is inconclusive below the minimum number of samples', () => {
    const verdict = report(records(10), { cand: { consumed: 10, evaluated: 10 } }).arms[0]!.verdict;
    assert.deepEqual(verdict, { status: 'inconclusive', reasons: ['only 10 evaluated pair(s); at least 30 are needed'] });
  });

  it('honours a configured minimum number of samples', () => {
    const verdict = report(records(10), { cand: { consumed: 10, evaluated: 10 } }, { minSamples: 10, maxErrorRateIncrease: 0.3 }).arms[0]!.verdict;
    assert.ok(!verdict.reasons.some((reason) => reason.startsWith('only ')), verdict.reasons.join(' | '));
    assert.ok(verdict.reasons.some((reason) => reason.startsWith('candidate error rate') && reason.endsWith('the upper end is within the +30.00 pp gate')), verdict.reasons.join(' | '));
  });

  it('fails when even the lower end of the Newcombe interval of the error-rate increase is above the gate', () => {
    const verdict = report(records(80), { cand: { consumed: 100, evaluated: 80, candidate_error: 20 } }).arms[0]!.verdict;
    assert.equal(verdict.status, 'fail');
    // Newcombe method 10 for 20/100 − 0/80: [0.1191, 0.2888].
    assert.equal(
      verdict.reasons[0],
      'candidate error rate 20.00% (20/100) vs stable 0.00% (0/80): +20.00 pp, 95% CI +11.91 pp to +28.88 pp; even the lower end exceeds the +0.50 pp gate',
    );
  });

  it('is inconclusive when the interval of the error-rate increase straddles the gate, quoting the interval', () => {
    // +2 pp observed against a 0.5 pp gate: 100 requests can neither establish nor rule it out.
    const verdict = report(records(98), { cand: { consumed: 100, evaluated: 98, candidate_error: 2 } }).arms[0]!.verdict;
    assert.equal(verdict.status, 'inconclusive');
    // Newcombe method 10 for 2/100 − 0/98: [−0.0204, 0.0700].
    assert.equal(
      verdict.reasons[0],
      'candidate error rate 2.00% (2/100) vs stable 0.00% (0/98): +2.00 pp, 95% CI −2.04 pp to +7.00 pp straddles the +0.50 pp gate: too few requests to rule out an increase beyond it',
    );
  });

  it('is inconclusive on the error rate even with no errors at all while the interval is wider than the gate', () => {
    const verdict = report(records(300), { cand: { consumed: 300, evaluated: 300 } }).arms[0]!.verdict;
    assert.equal(verdict.status, 'inconclusive');
    // Newcombe method 10 for 0/300 − 0/300: ±3.84 / 303.84 ≈ ±1.26 pp.
    assert.match(verdict.reasons[0]!, /^candidate error rate 0\.00% \(0\/300\) vs stable 0\.00% \(0\/300\): \+0\.00 pp, 95% CI −1\.26 pp to \+1\.26 pp straddles the \+0\.50 pp gate/);
  });

  it('passes the error-rate gate once the upper end of the interval is within it', () => {
    const verdict = report(records(1000), { cand: { consumed: 1000, evaluated: 1000 } }).arms[0]!.verdict;
    // Newcombe method 10 for 0/1000 − 0/1000: upper end 3.84 / 1003.84 ≈ 0.38 pp.
    assert.equal(verdict.reasons.at(-2), 'candidate error rate 0.00% (0/1000) vs stable 0.00% (0/1000): +0.00 pp, 95% CI −0.38 pp to +0.38 pp; the upper end is within the +0.50 pp gate');
  });

  it('fails when the whole p99 E2E ratio interval is above the gate', () => {
    const verdict = report(records(400, { candidateE2e: 600 }), { cand: { consumed: 400, evaluated: 400 } }, { maxErrorRateIncrease: 0.02 }).arms[0]!.verdict;
    assert.equal(verdict.status, 'fail');
    assert.deepEqual(verdict.reasons, [
      "candidate p99 E2E 600.0 ms is 1.50× stable's 400.0 ms (95% CI 1.50× to 1.50×), above the 1.20× gate across the whole interval",
      'candidate error rate 0.00% (0/400) vs stable 0.00% (0/400): +0.00 pp, 95% CI −0.95 pp to +0.95 pp; the upper end is within the +2.00 pp gate',
    ]);
  });

  it('is inconclusive below 368 pairs because a p99 has no interval there, even with a point estimate far above the gate', () => {
    const verdict = report(records(367, { candidateE2e: 600 }), { cand: { consumed: 367, evaluated: 367 } }, { maxErrorRateIncrease: 0.02 }).arms[0]!.verdict;
    assert.equal(verdict.status, 'inconclusive');
    assert.equal(
      verdict.reasons[0],
      "candidate p99 E2E 600.0 ms is 1.50× stable's 400.0 ms over 367 pairs, but there are too few samples above p99 for an interval (a 95% interval of a p99 needs at least 368 pairs), so the 1.20× gate cannot be checked",
    );
  });

  it('is inconclusive when the p99 E2E ratio interval straddles the gate, even with a point estimate far above it', () => {
    // Eight slow candidate answers in 400: the p99 is 1.5× stable's, but a resample holding fewer
    // than five of them has a p99 ratio near 1, which happens in about 10% of resamples.
    const list = Array.from({ length: 400 }, (_, i) => evaluationRecord(i, { candidateE2e: i < 8 ? 600 : 400 }));
    const verdict = report(list, { cand: { consumed: 400, evaluated: 400 } }, { maxErrorRateIncrease: 0.02 }).arms[0]!.verdict;
    assert.equal(verdict.status, 'inconclusive');
    assert.ok(verdict.reasons.includes("candidate p99 E2E 600.0 ms is 1.50× stable's 400.0 ms, but the 95% CI 1.00× to 1.50× straddles the 1.20× gate"), verdict.reasons.join(' | '));
  });

  it('passes with a reason for every gate when nothing regresses', () => {
    const verdict = report(records(400, { candidateE2e: 420 }), { cand: { consumed: 400, evaluated: 400 } }, { maxErrorRateIncrease: 0.02 }).arms[0]!.verdict;
    assert.deepEqual(verdict, {
      status: 'pass',
      reasons: [
        'candidate error rate 0.00% (0/400) vs stable 0.00% (0/400): +0.00 pp, 95% CI −0.95 pp to +0.95 pp; the upper end is within the +2.00 pp gate',
        "candidate p99 E2E 420.0 ms is 1.05× stable's 400.0 ms (95% CI 1.05× to 1.05×), within the 1.20× gate",
      ],
    });
  });

  it('rejects a bad gate naming the option', () => {
    assert.throws(() => report([], {}, { minSamples: -1 }), { code: EvaluationErrorCode.invalidOptions, message: /minSamples must be/ });
  });
});

function near(actual: { low: number; high: number }, expected: { low: number; high: number }): void {
  assert.ok(Math.abs(actual.low - expected.low) < 1e-12 && Math.abs(actual.high - expected.high) < 1e-12, JSON.stringify({ actual, expected }));
}
