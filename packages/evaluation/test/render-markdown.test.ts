import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildReport, renderMarkdown } from '../src/index.js';
import { EXPERIMENT, evaluationRecord, records } from './fixtures.js';

function markdown(): string {
  return renderMarkdown(
    buildReport({
      experimentId: EXPERIMENT,
      window: { from: '2024-05-01T00:00:00Z', to: '2024-05-01T01:00:00Z' },
      generatedAt: '2024-05-01T02:00:00Z',
      records: records(30, { candidateE2e: 412.345 }),
      outcomes: { cand: { consumed: 35, sampled_out: 5, evaluated: 30 } },
    }),
  );
}

describe('renderMarkdown', () => {
  it('puts the conservation table before the verdict and the latency table', () => {
    const text = markdown();
    const conservation = text.indexOf('| outcome | cand | total |');
    const verdict = text.indexOf('**Verdict: ');
    const latency = text.indexOf('| metric | side | n | p50 | p90 | p99 | max |');
    assert.ok(conservation >= 0 && verdict > conservation && latency > verdict, text);
  });

  it('shows counts, pending, consumed and whether each arm balances', () => {
    const text = markdown();
    assert.match(text, /^\| sampled_out \| 5 \| 5 \|$/m);
    assert.match(text, /^\| pending \| 0 \| 0 \|$/m);
    assert.match(text, /^\| \*\*consumed\*\* \| 35 \| 35 \|$/m);
    assert.match(text, /^\| balanced \| yes \| yes \|$/m);
  });

  it('formats milliseconds with one decimal, deltas with a sign and rates as percentages', () => {
    const text = markdown();
    assert.match(text, /^\| E2E \| candidate \| 30 \| 412\.3 ms \| 412\.3 ms \| 412\.3 ms \| 412\.3 ms \|$/m);
  });

  it('prints the bootstrap interval of the median delta, and no p99 interval below 368 pairs', () => {
    assert.match(markdown(), /^\| E2E \| 30 \| \+12\.3 ms \| \[\+12\.3 ms, \+12\.3 ms\] \| \+12\.3 ms \| — \| 1\.03× \| — \|$/m);
  });

  it('prints every quality rate with its n and Wilson interval, and the error rates and their difference with theirs', () => {
    const text = markdown();
    // Wilson 30/30: [0.8865, 1].
    assert.match(text, /^\| exact match \| 30 \| 100\.0% \| \[88\.6%, 100\.0%\] \|$/m);
    assert.match(text, /^\| tool-call agreement \| 0 \| — \| — \|$/m);
    // Wilson 0/30: [0, 0.1135]; Newcombe 0/30 − 0/30: [−0.1135, 0.1135].
    assert.match(text, /^\| candidate \| 0 \| 30 \| 0\.00% \| \[0\.00%, 11\.35%\] \|$/m);
    assert.match(text, /^\| candidate − stable \| {2}\| {2}\| \+0\.00 pp \| \[−11\.35 pp, \+11\.35 pp\] \|$/m);
  });

  it('shows the judge’s wins, ties, inconsistent verdicts and losses apart, each with a Wilson interval, and the win rate with its own', () => {
    // 10 wins, 4 ties, 5 inconsistent, 1 loss: win rate (10 + 9 / 2) / 20 = 72.5%.
    const verdicts = [...Array<string>(10).fill('win'), ...Array<string>(4).fill('tie'), ...Array<string>(5).fill('inconsistent'), 'loss'];
    const text = renderMarkdown(
      buildReport({
        experimentId: EXPERIMENT,
        window: { from: '2024-05-01T00:00:00Z', to: '2024-05-01T01:00:00Z' },
        generatedAt: '2024-05-01T02:00:00Z',
        records: verdicts.map((verdict, i) => ({ ...evaluationRecord(i), judge: { verdict } })),
        outcomes: { cand: { consumed: 20, evaluated: 20 } },
      }),
    );
    // Wilson 10/20: [29.9%, 70.1%]; 5/20: [11.2%, 46.9%]. The win rate's tie-aware score interval
    // (10 wins, 9 ties of 20; solved by hand with the variance p(1 − p) − min(τ, 2(1 − p)) / 4): [56.5%, 82.9%].
    assert.match(text, /^\| candidate wins \| 10 \| 50\.0% \| \[29\.9%, 70\.1%\] \|$/m);
    assert.match(text, /^\| ties \(both orders said tie, or identical answers\) \| 4 \| 20\.0% \| \[.*\] \|$/m);
    assert.match(text, /^\| inconsistent \(the two orders disagreed; counted as ties\) \| 5 \| 25\.0% \| \[11\.2%, 46\.9%\] \|$/m);
    assert.match(text, /^\| candidate loses \| 1 \| 5\.0% \| \[.*\] \|$/m);
    assert.match(text, /^\| \*\*win rate\*\* \(ties and inconsistent count ½\) \| 20 \| 72\.5% \| \[56\.5%, 82\.9%\] \|$/m);
  });

  it('says when the judge gave no verdicts', () => {
    assert.match(markdown(), /### LLM judge \(pairwise, position-swapped\)\n\nNo judge verdicts in this window\./);
  });

  it('ends with how the intervals were computed, including the seed', () => {
    assert.match(markdown(), /## How the intervals were computed\n\n.*2,000 resamples, seed 1592642302\./);
  });
});
