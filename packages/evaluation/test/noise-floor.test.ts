import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildReport } from '../src/report.js';
import { evaluationRecord } from './fixtures.js';

/** `n` records of an arm, the first `mismatches` of them answering differently from stable. */
function arm(name: string, n: number, mismatches: number) {
  return Array.from({ length: n }, (_, i) => evaluationRecord(i, { arm: name, exactMatch: i >= mismatches }));
}

function report(candidateMismatches: number, controlMismatches: number) {
  const records = [...arm('cand', 400, candidateMismatches), ...arm('control', 400, controlMismatches)];
  const experimentId = records[0]?.experimentId ?? '';
  return buildReport(
    { experimentId, window: { from: 0, to: 1 }, generatedAt: 2, records, outcomes: { cand: { consumed: 400, evaluated: 400 }, control: { consumed: 400, evaluated: 400 } } },
    // 400 requests without errors bound the error-rate increase at about 1 point, so the gate is 2.
    { controlArm: 'control', maxErrorRateIncrease: 0.02 },
  );
}

describe('the noise floor (control arm)', () => {
  it('does not flag a candidate that differs from stable only as much as stable differs from itself', () => {
    const cand = report(40, 42).arms.find((entry) => entry.arm === 'cand');
    assert.deepEqual((cand?.noise as { regressions: string[] }).regressions, []);
    assert.equal(cand?.verdict.status, 'pass', cand?.verdict.reasons.join(' | '));
    assert.ok(cand?.verdict.reasons.some((reason) => reason.startsWith('no disagreement above the noise floor')));
  });

  it('flags a candidate that differs on 10% more answers than the control', () => {
    const cand = report(80, 40).arms.find((entry) => entry.arm === 'cand');
    assert.ok((cand?.noise as { regressions: string[] }).regressions.includes('exact_mismatch'));
    assert.equal(cand?.verdict.status, 'fail');
    assert.ok(cand?.verdict.reasons.some((reason) => reason.includes("beyond the model's own noise")), cand?.verdict.reasons.join(' | '));
  });

  it('leaves the control arm itself and experiments without a control alone', () => {
    const withControl = report(80, 40);
    assert.equal(withControl.arms.find((entry) => entry.arm === 'control')?.noise, null);
    const records = arm('cand', 100, 50);
    const without = buildReport({ experimentId: records[0]?.experimentId ?? '', window: { from: 0, to: 1 }, generatedAt: 2, records, outcomes: { cand: { consumed: 100, evaluated: 100 } } });
    assert.equal(without.arms[0]?.noise, null);
  });
});
