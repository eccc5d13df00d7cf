import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvaluationRecord } from '@shadow-replay/contracts';
import { buildReport, renderHtml, renderMarkdown, type Report } from '../src/index.js';
import { EXPERIMENT, evaluationRecord } from './fixtures.js';

/** `n` records of an arm, the first `mismatches` answering differently from stable. */
function arm(name: string, n: number, mismatches: number): EvaluationRecord[] {
  return Array.from({ length: n }, (_, i) => evaluationRecord(i, { arm: name, exactMatch: i >= mismatches }));
}

/** A candidate that differs on 20% of 400 answers, and a control arm that differs on 10%. */
function withControl(): Report {
  return buildReport(
    {
      experimentId: EXPERIMENT,
      window: { from: 0, to: 1 },
      generatedAt: 2,
      records: [...arm('cand', 400, 80), ...arm('control', 400, 40)],
      outcomes: { cand: { consumed: 400, evaluated: 400 }, control: { consumed: 400, evaluated: 400 } },
    },
    { controlArm: 'control' },
  );
}

/** 4 judged pairs (each two calls, one of them retried twice), a parse failure, an unsampled pair and an identical pair. */
function judged(): Report {
  const judges = [
    { verdict: 'win', tokens: 300, costUsd: 0.0003, calls: [{ attempts: 1 }, { attempts: 3 }] },
    { verdict: 'inconsistent', tokens: 300, costUsd: 0.0003, calls: [{ attempts: 1 }, { attempts: 1 }] },
    { verdict: 'loss', tokens: 300, costUsd: 0.0003, calls: [{}, {}] },
    { verdict: 'tie', tokens: 300, costUsd: 0.0003, calls: [{ attempts: 1 }, { attempts: 1 }] },
    { verdict: 'parse_error', tokens: 250, costUsd: 0.00025, calls: [{ attempts: 1, raw: 'I think A' }, { attempts: 1 }] },
    { verdict: 'not_sampled', tokens: 0, costUsd: 0, calls: [] },
    { verdict: 'auto_tie', tokens: 0, costUsd: 0, calls: [] },
  ];
  return buildReport({
    experimentId: EXPERIMENT,
    window: { from: 0, to: 1 },
    generatedAt: 2,
    records: judges.map((judge, i) => ({ ...evaluationRecord(i), judge })),
    outcomes: { cand: { consumed: judges.length, evaluated: judges.length } },
  });
}

describe('the noise floor in the Markdown and HTML reports', () => {
  it('is a table per compared arm: each metric’s candidate and control rates, their margins and the regression flag', () => {
    const report = withControl();
    const text = renderMarkdown(report);
    assert.match(text, /### Noise floor \(against the control arm\)\n\nControl arm `control`\. A metric regresses only when .* \|R − N\| \/ \(R \+ N\) > 0\.2 and R − N > 3\.00 pp\./);
    // R = 80/400, N = 40/400: R − N = 10 points, relative 0.1 / 0.3.
    assert.match(text, /^\| answers differ \(exact\) \(`exact_mismatch`\) \| 20\.0% \| 10\.0% \| \+10\.00 pp \| 0\.33 \| \*\*yes\*\* \|$/m);
    assert.match(text, /^\| finish reasons differ \(`finish_reason_disagreement`\) \| 0\.0% \| 0\.0% \| \+0\.00 pp \| 0\.00 \| no \|$/m);
    const html = renderHtml(report);
    const table = html.slice(html.indexOf('<table class="data compact noise">'), html.indexOf('</table>', html.indexOf('<table class="data compact noise">')));
    assert.match(table, /<tr class="regression"><th scope="row">answers differ \(exact\) .*?<\/th><td class="num">20\.0%<\/td><td class="num">10\.0%<\/td><td class="num">\+10\.00 pp<\/td><td class="num">0\.33<\/td><td class="num flag bad">regression<\/td><\/tr>/);
    assert.match(table, /finish reasons differ .*?<td class="num flag">within noise<\/td>/);
    assert.match(html, /the control arm <code>control<\/code>, the stable model asked again/);
  });

  it('says which arm is the control, and that an experiment without one has no noise floor', () => {
    const report = withControl();
    assert.match(renderMarkdown(report), /## Arm control[\s\S]*This is the control arm \(the stable model asked again\)/);
    assert.match(renderHtml(report), /<h3>Noise floor<\/h3><p class="muted">This is the control arm/);
    const alone = buildReport({ experimentId: EXPERIMENT, window: { from: 0, to: 1 }, generatedAt: 2, records: arm('cand', 40, 4), outcomes: { cand: { consumed: 40, evaluated: 40 } } });
    assert.match(renderMarkdown(alone), /No control arm in this experiment: the noise floor was not measured/);
    assert.match(renderHtml(alone), /<h3>Noise floor<\/h3><p class="muted">No control arm in this experiment/);
  });

  it('says so rather than guessing when the noise comparison has a shape the renderer does not know', () => {
    const report = withControl();
    report.arms[0]!.noise = { somethingElse: true };
    assert.match(renderMarkdown(report), /holds a noise comparison this renderer cannot read/);
  });
});

describe('the judge’s calls, tokens, cost and parse failures in the Markdown and HTML reports', () => {
  it('are counted in the report: two calls per judged pair, retried attempts apart', () => {
    const judge = judged().arms[0]!.judge;
    assert.equal(judge.calls, 10);
    assert.equal(judge.retries, 2);
    assert.equal(judge.tokens, 1_450);
    assert.equal(judge.parseErrors, 1);
    assert.equal(judge.notSampled, 1);
  });

  it('appear as a usage table in both reports', () => {
    const report = judged();
    assert.match(renderMarkdown(report), /^\| judge calls \| retried attempts \| tokens \| cost \| parse failures \| not sampled \|\n.*\n\| 10 \| 2 \| 1,450 \| \$0\.001450 \| 1 \| 1 \|$/m);
    const html = renderHtml(report);
    assert.match(html, /<table class="data compact judge-usage">[\s\S]*?<tbody><tr><td class="num">10<\/td><td class="num">2<\/td><td class="num">1,450<\/td><td class="num">\$0\.001450<\/td><td class="num">1<\/td><td class="num">1<\/td><\/tr><\/tbody>/);
  });

  it('show the unreachable judges older evaluators recorded as a verdict, in their own column', () => {
    const records = ['win', 'error', 'error'].map((verdict, i) => ({ ...evaluationRecord(i), judge: { verdict, tokens: 0, costUsd: 0, calls: [] } }));
    const report = buildReport({ experimentId: EXPERIMENT, window: { from: 0, to: 1 }, generatedAt: 2, records, outcomes: { cand: { consumed: 3, evaluated: 3 } } });
    assert.match(renderMarkdown(report), /^\| judge calls \| retried attempts \| tokens \| cost \| parse failures \| unreachable \| not sampled \|\n.*\n\| 0 \| 0 \| 0 \| \$0\.000000 \| 0 \| 2 \| 0 \|$/m);
    assert.match(renderHtml(report), /<th class="num">unreachable<\/th>[\s\S]*?<td class="num zero">0<\/td><td class="num">2<\/td><td class="num zero">0<\/td><\/tr>/);
  });

  it('are left out when the judge never saw a pair', () => {
    const report = buildReport({ experimentId: EXPERIMENT, window: { from: 0, to: 1 }, generatedAt: 2, records: arm('cand', 5, 0), outcomes: { cand: { consumed: 5, evaluated: 5 } } });
    assert.doesNotMatch(renderMarkdown(report), /judge calls/);
    assert.doesNotMatch(renderHtml(report), /<table class="data compact judge-usage">/);
  });
});
