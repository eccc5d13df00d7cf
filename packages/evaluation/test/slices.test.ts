import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvaluationRecord } from '@shadow-replay/contracts';
import {
  EvaluationErrorCode,
  ReportSchema,
  buildReport,
  evaluatePair,
  percentile,
  renderHtml,
  renderMarkdown,
  sliceArm,
  wilsonInterval,
  winRateInterval,
  type ReportOptions,
  type Slice,
} from '../src/index.js';
import { EXPERIMENT, SOURCES, evaluationRecord, responseEvent } from './fixtures.js';

type Origin = Pick<EvaluationRecord, 'route' | 'model' | 'tenant'>;

/** Record `i` of arm `cand` with the given slice keys and overrides. */
function record(i: number, origin: Origin, options: Parameters<typeof evaluationRecord>[1] = {}, judge: string | null = null): EvaluationRecord {
  return { ...evaluationRecord(i, options), ...origin, judge: judge === null ? null : { verdict: judge } };
}

function report(recordList: EvaluationRecord[], options: ReportOptions = {}) {
  const built = buildReport(
    { experimentId: EXPERIMENT, window: { from: 0, to: 1 }, generatedAt: 2, records: recordList, outcomes: { cand: { consumed: recordList.length, evaluated: recordList.length } } },
    options,
  );
  const parsed = ReportSchema.safeParse(built);
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
  return built;
}

function find(slices: readonly Slice[], value: string | null, kind: Slice['kind'] = 'value'): Slice {
  const found = slices.find((slice) => slice.kind === kind && slice.value === value);
  assert.ok(found, `no ${kind} slice ${String(value)} in ${JSON.stringify(slices.map((slice) => [slice.kind, slice.value]))}`);
  return found;
}

/**
 * 120 records of tenant `big` (candidate 50 ms slower, 6 candidate errors, judge 60 wins of 100
 * judged) and 10 of tenant `tiny` (candidate 200 ms slower), all on one route; 30 records of
 * model `m-2`, the rest `m-1`.
 */
function mixedRecords(): EvaluationRecord[] {
  const list: EvaluationRecord[] = [];
  for (let i = 0; i < 120; i++) {
    const verdict = i < 60 ? 'win' : i < 80 ? 'loss' : i < 100 ? 'tie' : null;
    list.push(
      record(
        i,
        { route: '/v1/chat/completions', model: i < 30 ? 'm-2' : 'm-1', tenant: 'big' },
        { stableE2e: 400 + i, candidateE2e: 450 + i, candidateOutcome: i % 20 === 0 ? 'error' : 'ok' },
        verdict,
      ),
    );
  }
  for (let i = 120; i < 130; i++) {
    list.push(record(i, { route: '/v1/chat/completions', model: 'm-1', tenant: 'tiny' }, { stableE2e: 400, candidateE2e: 600 }, 'loss'));
  }
  return list;
}

describe('report slices by route, model and tenant', () => {
  it('gives each tenant its count, error rates, E2E delta and judge win rate with their intervals', () => {
    const slices = report(mixedRecords()).arms[0]!.slices!;
    assert.equal(slices.minSamples, 30);
    assert.deepEqual(slices.tenant.map((slice) => [slice.value, slice.records]), [['big', 120], ['tiny', 10]], 'largest slice first');

    const big = find(slices.tenant, 'big');
    assert.equal(big.tooSmall, false);
    assert.deepEqual([big.errors.candidate.n, big.errors.candidate.total], [6, 120]);
    assert.deepEqual(big.errors.candidate.ci95, wilsonInterval(6, 120));
    assert.equal(big.errors.stable.rate, 0);
    // Errors leave the latency statistics: 114 pairs where both sides answered, each 50 ms slower.
    assert.equal(big.e2eDelta.n, 114);
    assert.equal(big.e2eDelta.p50.value, 50);
    assert.deepEqual(big.e2eDelta.p50.ci95, { low: 50, high: 50 });
    assert.equal(big.judge.n, 100);
    assert.equal(big.judge.wins, 60);
    assert.equal(big.judge.winRate, (60 + 20 / 2) / 100);
    // Ties score ½, so the interval is the tie-aware score interval, narrower than Wilson's of 70/100.
    assert.deepEqual(big.judge.ci95, winRateInterval(60, 20, 100));
    assert.ok(big.judge.ci95.high - big.judge.ci95.low < wilsonInterval(70, 100).high - wilsonInterval(70, 100).low);
  });

  it('shows a slice below the minimum sample size, marked too small and without a bootstrap interval', () => {
    const slices = report(mixedRecords()).arms[0]!.slices!;
    const tiny = find(slices.tenant, 'tiny');
    assert.equal(tiny.tooSmall, true);
    assert.equal(tiny.records, 10);
    assert.equal(tiny.e2eDelta.p50.value, 200);
    assert.equal(tiny.e2eDelta.p50.ci95, null);
    assert.equal(tiny.e2eDelta.p99.ci95, null);
    assert.equal(tiny.judge.winRate, 0);
    assert.deepEqual(tiny.judge.ci95, wilsonInterval(0, 10), 'a score interval stays honest at any n (Wilson\'s, without ties)');

    const models = slices.model;
    assert.deepEqual(models.map((slice) => [slice.value, slice.records, slice.tooSmall]), [['m-1', 100, false], ['m-2', 30, false]], 'exactly minSamples is enough');
    const lowered = report(mixedRecords(), { minSamples: 5 }).arms[0]!.slices!;
    assert.equal(find(lowered.tenant, 'tiny').tooSmall, false);
    assert.notEqual(find(lowered.tenant, 'tiny').e2eDelta.p50.ci95, null);
  });

  it('computes the E2E delta quantiles of each slice over its own pairs', () => {
    const list = Array.from({ length: 200 }, (_, i) => record(i, { tenant: i % 2 === 0 ? 'even' : 'odd' }, { stableE2e: 100, candidateE2e: 100 + (i % 2 === 0 ? i : -i) }));
    const slices = report(list).arms[0]!.slices!;
    const even = find(slices.tenant, 'even');
    const evenDeltas = list.filter((_, i) => i % 2 === 0).map((entry) => entry.deltas.e2eMs);
    assert.equal(even.e2eDelta.p50.value, percentile(evenDeltas, 0.5));
    assert.equal(even.e2eDelta.p99.value, percentile(evenDeltas, 0.99));
    const ci = even.e2eDelta.p50.ci95!;
    assert.ok(ci.low <= even.e2eDelta.p50.value && even.e2eDelta.p50.value <= ci.high && ci.high > ci.low, JSON.stringify(ci));
    assert.ok(find(slices.tenant, 'odd').e2eDelta.p50.value! < 0);
  });

  it('groups records without a value into a missing slice, and says so when no record has one', () => {
    const list = [...Array.from({ length: 40 }, (_, i) => record(i, { tenant: 'acme' })), ...Array.from({ length: 5 }, (_, i) => record(40 + i, {}))];
    const slices = report(list).arms[0]!.slices!;
    assert.deepEqual(slices.tenant.map((slice) => [slice.kind, slice.value, slice.records]), [['value', 'acme', 40], ['missing', null, 5]]);
    assert.deepEqual(slices.route.map((slice) => [slice.kind, slice.records]), [['missing', 45]]);
    const markdown = renderMarkdown(report(list));
    assert.match(markdown, /No record carries a route\./);
    assert.match(markdown, /\| \*no tenant\* \| too small \(< 30\) \| 5 \|/);
  });

  it('folds the least frequent values into one other slice beyond maxSliceValues', () => {
    // Tenants t0..t4 with 50, 40, 30, 20, 10 records.
    const list: EvaluationRecord[] = [];
    let i = 0;
    for (const [tenant, n] of [['t0', 50], ['t1', 40], ['t2', 30], ['t3', 20], ['t4', 10]] as const) {
      for (let k = 0; k < n; k++) list.push(record(i++, { tenant }));
    }
    const slices = report(list, { maxSliceValues: 2 }).arms[0]!.slices!;
    assert.equal(slices.maxValues, 2);
    assert.deepEqual(slices.tenant.map((slice) => [slice.kind, slice.value, slice.values, slice.records]), [
      ['value', 't0', 1, 50],
      ['value', 't1', 1, 40],
      ['other', null, 3, 60],
    ]);
    assert.equal(report(list).arms[0]!.slices!.tenant.length, 5, 'the default shows 20 values');
    assert.throws(() => report(list, { maxSliceValues: 0 }), { code: EvaluationErrorCode.invalidOptions, message: /maxSliceValues/ });
  });

  it('is reproducible, and a new slice leaves the intervals of the others unchanged', () => {
    const base = Array.from({ length: 300 }, (_, i) => record(i, { tenant: i < 250 ? 'a' : 'b', route: '/r' }, { stableE2e: 400, candidateE2e: 400 + 50 * Math.sin(i) }));
    const first = report(base).arms[0]!.slices!;
    assert.deepEqual(report([...base].reverse()).arms[0]!.slices, first, 'record order does not matter');
    const extra = [...base, ...Array.from({ length: 50 }, (_, i) => record(1000 + i, { tenant: 'c', route: '/r' }))];
    assert.deepEqual(find(report(extra).arms[0]!.slices!.tenant, 'a'), find(first.tenant, 'a'));
    const reseeded = find(report(base, { seed: 7 }).arms[0]!.slices!.tenant, 'a');
    assert.notDeepEqual(reseeded.e2eDelta.p50.ci95, find(first.tenant, 'a').e2eDelta.p50.ci95, 'the interval follows the seed');
  });

  it('shows the arm\'s own E2E delta for a slice that holds the whole arm', () => {
    const list = Array.from({ length: 100 }, (_, i) => record(i, { route: '/only', tenant: i < 50 ? 'a' : 'b' }, { stableE2e: 400, candidateE2e: 400 + 30 * Math.sin(i) }));
    const arm = report(list).arms[0]!;
    const route = find(arm.slices!.route, '/only');
    assert.deepEqual(route.e2eDelta, { n: 100, p50: arm.deltas.e2eMs.p50, p99: arm.deltas.e2eMs.p99 });
    assert.notDeepEqual(find(arm.slices!.tenant, 'a').e2eDelta.p50.ci95, arm.deltas.e2eMs.p50.ci95, 'a real slice is bootstrapped on its own');
  });

  it('slices an arm directly, for callers outside the report', () => {
    const slices = sliceArm(mixedRecords(), { arm: 'cand', minSamples: 30, maxValues: 1, bootstrap: { seed: 1, iterations: 200, confidence: 0.95 } });
    assert.deepEqual(slices.tenant.map((slice) => [slice.kind, slice.records]), [['value', 120], ['other', 10]]);
    assert.throws(() => sliceArm([], { arm: 'cand', minSamples: 30, maxValues: 0.5, bootstrap: { seed: 1, iterations: 200, confidence: 0.95 } }), { code: EvaluationErrorCode.invalidOptions });
  });
});

describe('slice keys of an evaluated pair', () => {
  const base = { experimentId: EXPERIMENT, requestId: 'req-1', arm: 'cand', sources: SOURCES, evaluatorVersion: 't', now: 1 };
  const origin = { route: '/v1/chat/completions', model: 'llama-3.1-70b', tenant: 'from-event', headers: { 'x-tenant-id': 'acme', 'x-org': 'org-9' } };

  it('takes route, requested model and tenant header from the origin replay copied onto the candidate answer', () => {
    const record = evaluatePair({ ...base, stable: responseEvent(), candidate: { ...responseEvent({ arm: 'cand' }), origin } });
    assert.deepEqual([record.route, record.model, record.tenant], ['/v1/chat/completions', 'llama-3.1-70b', 'acme']);
    const custom = evaluatePair({ ...base, tenantHeader: 'X-Org', stable: responseEvent(), candidate: { ...responseEvent({ arm: 'cand' }), origin } });
    assert.equal(custom.tenant, 'org-9', 'the configured header, matched case-insensitively');
    const unpublished = evaluatePair({ ...base, tenantHeader: 'x-missing', stable: responseEvent(), candidate: { ...responseEvent({ arm: 'cand' }), origin } });
    assert.equal(unpublished.tenant, 'from-event', 'without the header, the request event\u2019s own tenant');
  });

  it('falls back to the stable answer: its origin, else the model its endpoint reported, and no route or tenant', () => {
    const fromStable = evaluatePair({ ...base, stable: { ...responseEvent(), origin: { route: '/r', tenant: 't' } }, candidate: responseEvent({ arm: 'cand' }) });
    assert.deepEqual([fromStable.route, fromStable.model, fromStable.tenant], ['/r', 'm', 't']);
    const bare = evaluatePair({ ...base, stable: responseEvent(), candidate: responseEvent({ arm: 'cand' }) });
    assert.equal(bare.model, 'm');
    assert.ok(!('route' in bare) && !('tenant' in bare), 'absent, not undefined, so the record stays valid JSON of v1');
  });
});

describe('slices in the rendered reports', () => {
  const hostile = '<script>alert(1)</script>|x';
  const list = [...mixedRecords(), ...Array.from({ length: 3 }, (_, i) => record(500 + i, { tenant: hostile, model: 'm-1', route: '/v1/chat/completions' }))];
  const built = report(list);

  it('renders a Markdown table per dimension with the too-small slices marked', () => {
    const markdown = renderMarkdown(built);
    assert.match(markdown, /### Slices/);
    assert.match(markdown, /#### Tenant\n\n\| tenant \| sample \| records \|/);
    assert.match(markdown, /\| `big` \| ok \| 120 \|/);
    assert.match(markdown, /\| `tiny` \| too small \(< 30\) \| 10 \|/);
    assert.ok(markdown.includes('\\|x`'), 'a pipe in a value does not break the table');
  });

  it('renders an escaped HTML table per dimension, too-small rows marked', () => {
    const html = renderHtml(built);
    assert.match(html, /<h3>Slices<\/h3>/);
    assert.match(html, /<caption>By tenant<\/caption>/);
    assert.match(html, /<tr class="small"><th scope="row"><code>tiny<\/code> <span class="tag small">too small<\/span><\/th><td class="num">10<\/td>/);
    assert.match(html, /<tr><th scope="row"><code>big<\/code><\/th><td class="num">120<\/td>/);
    assert.ok(!html.includes('<script>alert'), 'values are escaped');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;|x'));
  });

  it('renders an older report without slices with a note', () => {
    const { slices: _dropped, ...arm } = built.arms[0]!;
    const older = { ...built, arms: [arm] };
    assert.match(renderHtml(older), /This report carries no slices/);
    assert.doesNotMatch(renderMarkdown(older), /### Slices/);
  });
});
