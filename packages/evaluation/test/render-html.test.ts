import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvaluationRecord } from '@shadow-replay/contracts';
import { ReportSchema, buildReport, evaluatePair, renderHtml, type OutcomeCounters, type Report } from '../src/index.js';
import { EXPERIMENT, SOURCES, responseEvent } from './fixtures.js';

const HOSTILE = 'Sure! <script>alert("pwned")</script> <img src="https://tracker.example/p.gif"> see http://evil.example & more';

/** Records of `n` pairs through evaluatePair, so they carry answer excerpts like the evaluator's. */
function pairs(n: number, arm = 'cand', options: { spread?: number } = {}): EvaluationRecord[] {
  const spread = options.spread ?? 1;
  return Array.from({ length: n }, (_, i) => {
    const requestId = `req-${String(i).padStart(3, '0')}`;
    const stableE2e = 300 + ((i * 37) % 200) * spread;
    const differs = i % 5 === 0;
    return evaluatePair({
      experimentId: EXPERIMENT,
      requestId,
      arm,
      stable: responseEvent({ requestId, content: `The answer to question ${i} is forty two.`, e2eMs: stableE2e, ttftMs: 40 + (i % 20) }),
      candidate: responseEvent({
        arm,
        requestId,
        content: i === 5 ? HOSTILE : differs ? `The reply to question ${i} is 42, I think.` : `The answer to question ${i} is forty two.`,
        e2eMs: stableE2e + 20 + (i % 7) * 3,
        ttftMs: 45 + (i % 20),
      }),
      sources: SOURCES,
      evaluatorVersion: 'test',
      now: 1_714_521_700_000 + i,
    });
  });
}

function report(records: EvaluationRecord[], outcomes: Record<string, OutcomeCounters>, experimentId = EXPERIMENT): Report {
  const built = buildReport({
    experimentId,
    window: { from: '2024-05-01T00:00:00Z', to: '2024-05-01T01:00:00Z' },
    generatedAt: '2024-05-01T01:05:00Z',
    records: records.map((record) => ({ ...record, experimentId })),
    outcomes,
  });
  const parsed = ReportSchema.safeParse(built);
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
  return built;
}

const standard = () => report(pairs(60), { cand: { consumed: 80, sampled_out: 20, evaluated: 60 } });

/** The `<svg …>…</svg>` whose data-plot is `id`. */
function plot(html: string, id: string): string {
  const start = html.indexOf(`data-plot="${id}"`);
  assert.ok(start >= 0, `plot ${id} is in the page`);
  const open = html.lastIndexOf('<svg', start);
  return html.slice(open, html.indexOf('</svg>', start) + '</svg>'.length);
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`))?.length ?? 0;
}

/**
 * What in a page could make a browser fetch something: every start tag's URL-bearing attribute
 * (src, href, xlink:href, srcset, action, formaction, poster, data, background, ping, manifest,
 * lowsrc) must be a fragment (`#…`), styles may use `url(#…)` only and no `@import`, and there
 * is no element that loads or runs anything (script, link, iframe, frame, object, embed, base,
 * img, image, use, audio, video, source, track, meta refresh). User text is escaped, so a `<`
 * in the page always opens real markup; text nodes are not inspected because they fetch nothing.
 * Returns the offending snippets.
 */
function externalReferences(html: string): string[] {
  const problems: string[] = [];
  for (const [tag] of html.matchAll(/<[a-zA-Z][^>]*>/g)) {
    const name = /^<([a-zA-Z][\w:-]*)/.exec(tag)![1]!.toLowerCase();
    if (['script', 'link', 'iframe', 'frame', 'object', 'embed', 'base', 'img', 'image', 'use', 'audio', 'video', 'source', 'track', 'portal'].includes(name)) problems.push(tag);
    if (name === 'meta' && /http-equiv\s*=\s*["']?refresh/i.test(tag)) problems.push(tag);
    for (const [, attribute, value] of tag.matchAll(/\s(src|href|xlink:href|srcset|action|formaction|poster|data|background|ping|manifest|lowsrc)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi)) {
      if (!value!.replace(/^["']|["']$/g, '').startsWith('#')) problems.push(`${attribute}=${value}`);
    }
    if (/url\(\s*['"]?(?!#)/i.test(tag)) problems.push(tag);
  }
  for (const [, css] of html.matchAll(/<style[^>]*>([\s\S]*?)<\/style>/gi)) {
    if (/@import/i.test(css!)) problems.push('@import');
    for (const [use] of css!.matchAll(/url\(\s*['"]?([^)'"]*)/gi)) if (!/url\(\s*['"]?#/i.test(use)) problems.push(use);
  }
  return problems;
}

describe('renderHtml', () => {
  it('is one HTML document with inline CSS, a restrictive content security policy and no script', () => {
    const html = renderHtml(standard());
    assert.match(html, /^<!doctype html>\n<html lang="en">/);
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">/);
    assert.equal(count(html, /<style>/), 1);
    assert.doesNotMatch(html, /<script/i);
    assert.deepEqual(externalReferences(html), []);
  });

  it('puts the title with the experiment id and window first, then the conservation table, then the verdicts', () => {
    const html = renderHtml(standard());
    const title = html.indexOf(`<h1>Experiment <span class="id">${EXPERIMENT}</span></h1>`);
    const window = html.indexOf('2024-05-01 00:00:00 UTC → 2024-05-01 01:00:00 UTC');
    const conservation = html.indexOf('<section id="conservation">');
    const firstBadge = html.indexOf('class="badge');
    const firstPlot = html.indexOf('<svg');
    assert.ok(title >= 0 && window > title && conservation > window, 'title and window before conservation');
    assert.ok(firstBadge > conservation && firstPlot > conservation, 'no verdict or plot before the conservation table');
    assert.match(html, /Generated<\/dt><dd>2024-05-01 01:05:00 UTC/);
  });

  it('highlights whether conservation balances, per arm and in total', () => {
    const balanced = renderHtml(standard());
    assert.match(balanced, /<div class="banner ok"><span class="big">Balanced: yes<\/span>/);
    assert.match(balanced, /<tr class="balance"><th scope="row">balanced<\/th><td class="num yes">yes<\/td><td class="num yes">yes<\/td><\/tr>/);
    const pending = renderHtml(report(pairs(30), { cand: { consumed: 40, sampled_out: 5, evaluated: 30 } }));
    assert.match(pending, /<div class="banner bad"><span class="big">Balanced: no<\/span>/);
    assert.match(pending, /<td class="num no">no<\/td>/);
    assert.match(pending, /<li>arm cand: 5 request\(s\) still pending/);
  });

  it('gives every arm a verdict badge with its reasons', () => {
    const html = renderHtml(report(pairs(10), { cand: { consumed: 10, evaluated: 10 } }));
    assert.match(html, /<h2>Arm <span class="id">cand<\/span><\/h2><span class="badge inconclusive">inconclusive<\/span><\/div>\n<ul class="reasons inconclusive"><li>only 10 evaluated pair\(s\); at least 30 are needed<\/li><\/ul>/);
  });

  it('draws E2E and TTFT CDFs with one step polyline per side and two points per sample value', () => {
    const built = standard();
    const html = renderHtml(built);
    const samples = built.arms[0]!.samples!;
    for (const [id, metric] of [
      ['arm-1-cdf-e2e', 'e2eMs'],
      ['arm-1-cdf-ttft', 'ttftMs'],
    ] as const) {
      const svg = plot(html, id);
      const lines = [...svg.matchAll(/<polyline class="series series-(stable|candidate)" data-values="(\d+)"[^>]* points="([^"]*)"/g)];
      assert.deepEqual(
        lines.map((line) => line[1]),
        ['stable', 'candidate'],
      );
      for (const [, side, values, points] of lines) {
        const expected = samples[metric][side as 'stable' | 'candidate'].values.length;
        assert.equal(Number(values), expected);
        assert.equal(points!.trim().split(/\s+/).length, 2 * expected, `${id} ${side}`);
      }
      assert.match(svg, /<g class="axis x"/);
      assert.match(svg, /<g class="axis y"/);
      assert.equal(count(svg, /<g class="legend">/), 1);
      assert.match(svg, /stable · n 60 · p50/);
    }
  });

  it('switches a CDF to a log axis when latencies span more than 20×', () => {
    const html = renderHtml(report(pairs(60, 'cand', { spread: 60 }), { cand: { consumed: 60, evaluated: 60 } }));
    assert.match(plot(html, 'arm-1-cdf-e2e'), /E2E \(ms\) \(log scale\)/);
    assert.doesNotMatch(plot(html, 'arm-1-cdf-ttft'), /log scale/);
  });

  it('draws the per-request delta distributions as histograms with the median and its interval marked', () => {
    const html = renderHtml(standard());
    const svg = plot(html, 'arm-1-delta-e2e');
    const bins = Number(/data-bins="(\d+)"/.exec(svg)![1]);
    const bars = count(svg, /<rect class="bar"/);
    assert.ok(bars > 0 && bars <= bins, `${bars} bars in ${bins} bins`);
    const shares = [...svg.matchAll(/<title>([\d.]+)% of requests/g)].reduce((total, match) => total + Number(match[1]), 0);
    assert.ok(Math.abs(shares - 100) < 0.5, `bars add up to 100% (got ${shares})`);
    assert.equal(count(svg, /<line class="marker"/), 2, 'the median and zero');
    assert.equal(count(svg, /<rect class="marker-ci"/), 1);
    assert.match(svg, /median \+\d/);
    assert.ok(html.includes('data-plot="arm-1-delta-ttft"'));
  });

  it('says "judge not run" in the judge plot area when the judge has no verdicts, and draws nothing made up', () => {
    const svg = plot(renderHtml(standard()), 'arm-1-judge');
    assert.match(svg, /<text [^>]*class="empty"[^>]*>judge not run<\/text>/);
    assert.equal(count(svg, /class="(bar|estimate|whisker)"/), 0);
  });

  it('draws wins, ties, inconsistent verdicts and losses with Wilson intervals and the win rate with its interval when the judge ran', () => {
    const built = standard();
    built.arms[0]!.judge = { n: 50, wins: 20, ties: 16, losses: 10, inconsistent: 4, winRate: 0.6, ci95: { low: 0.46, high: 0.72 } };
    const html = renderHtml(built);
    const svg = plot(html, 'arm-1-judge');
    assert.equal(count(svg, /<rect class="bar"/), 4);
    assert.equal(count(svg, /<circle class="estimate"/), 5);
    assert.equal(count(svg, /<line class="whisker"/), 5);
    assert.match(svg, />candidate wins<\/text>.*>20 \(40\.0%\)</s);
    assert.match(svg, />ties<\/text>.*>16 \(32\.0%\)</s);
    assert.match(svg, />inconsistent<\/text>.*>4 \(8\.0%\)</s);
    assert.match(svg, />candidate loses<\/text>.*>10 \(20\.0%\)</s);
    assert.doesNotMatch(svg, /judge not run/);
    assert.match(html, /Inconsistent: the two orders disagreed \(4, a sign of position bias\); the win rate counts them as ties/);
  });

  it('shows every outcome and pending as a bar row, with a bar for each non-zero count', () => {
    const built = report(pairs(60), { cand: { consumed: 100, sampled_out: 20, filtered: 10, candidate_error: 10, evaluated: 60 } });
    const svg = plot(renderHtml(built), 'arm-1-outcomes');
    assert.equal(count(svg, /<rect class="bar"/), 4);
    for (const name of ['sampled_out', 'filtered', 'shed_lag', 'shed_budget', 'shed_circuit', 'dead_letter', 'candidate_error', 'stable_missing', 'evaluated', 'eval_failed', 'pending']) {
      assert.match(svg, new RegExp(`>${name}</text>`));
    }
    assert.match(svg, /data-value="60"/);
    assert.match(svg, />60 \(60\.0%\)</);
  });

  it('plots quality rates as dots with whiskers and says "no data" for a metric without pairs', () => {
    const svg = plot(renderHtml(standard()), 'arm-1-quality');
    assert.equal(count(svg, /<circle class="estimate"/), 8, 'six pair metrics with data, and refusals on both sides');
    assert.equal(count(svg, /<text [^>]*class="empty"[^>]*>no data</), 2, 'JSON equality and JSON validity: no JSON answers');
    assert.match(svg, />exact match<\/text>/);
    assert.match(svg, /80\.0% {2}\[[\d.]+%, [\d.]+%\] {2}n 60/);
  });

  it('shows the tokens and cost table', () => {
    assert.match(renderHtml(standard()), /<tr><th scope="row"><span class="side-name candidate"><span class="dot"><\/span>candidate<\/span><\/th><td class="num">60<\/td><td class="num">6,000<\/td>/);
  });

  it('escapes every string from the report: a <script> in an answer is text, not markup', () => {
    const html = renderHtml(standard());
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<img/i);
    assert.match(html, /&lt;script&gt;alert\(&quot;pwned&quot;\)&lt;\/script&gt;/);
    assert.match(html, /&lt;img src=&quot;https:\/\/tracker\.example\/p\.gif&quot;&gt;/);
    assert.deepEqual(externalReferences(html), []);
  });

  it('escapes hostile experiment and arm names wherever they appear, attributes included', () => {
    const arm = '"><script>x()</script>';
    const experiment = "exp'<marquee>";
    const built = report(pairs(30, arm), { [arm]: { consumed: 30, evaluated: 30 } }, experiment);
    const html = renderHtml(built);
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<marquee/);
    assert.match(html, /<title>Shadow report · exp&#39;&lt;marquee&gt;<\/title>/);
    assert.match(html, /aria-label="Outcome counts of arm &quot;&gt;&lt;script&gt;x\(\)&lt;\/script&gt;"/);
    assert.match(html, /--experiment &#39;exp&#39;\\&#39;&#39;&lt;marquee&gt;&#39;/);
    assert.deepEqual(externalReferences(html), []);
  });

  it('shows the worst pairs side by side with removed and added words highlighted', () => {
    const html = renderHtml(standard());
    const worst = html.slice(html.indexOf('<h3>Worst pairs</h3>'), html.indexOf('<section id="pairs-export">'));
    assert.equal(count(worst, /<article class="pair">/), 10);
    assert.match(worst, /<div class="answer">The <del>answer<\/del> to question 0 is <del>forty two<\/del>\.<\/div>/);
    assert.match(worst, /<div class="answer">The <ins>reply<\/ins> to question 0 is <ins>42, I think<\/ins>\.<\/div>/);
    assert.match(worst, /<span class="tag least_similar">least similar<\/span>/);
    assert.match(worst, /<span class="tag slowest">slowest<\/span>/);
  });

  it('explains the pairs export with the command to run', () => {
    assert.match(renderHtml(standard()), /<pre class="command">shadow-replay report --experiment exp-1 --format json --out report\.json --pairs pairs\.jsonl<\/pre>/);
  });

  it('renders a report built before samples and worst pairs existed, saying what is missing', () => {
    const built = standard();
    const old = { ...built, arms: built.arms.map(({ samples: _samples, worstPairs: _worst, ...arm }) => arm) };
    assert.ok(ReportSchema.safeParse(old).success);
    const html = renderHtml(old);
    assert.equal(count(html, /no per-request samples in this report/), 4);
    assert.match(html, /This report carries no worst pairs/);
    assert.equal(count(html, /<polyline/), 0);
  });

  it('renders a report without arms', () => {
    const html = renderHtml(report([], {}));
    assert.match(html, /No arm has counters or records in this window\./);
    assert.deepEqual(externalReferences(html), []);
  });

  it('is a pure function of the report', () => {
    const built = standard();
    assert.equal(renderHtml(built), renderHtml(structuredClone(built)));
  });
});

describe('externalReferences (the check the tests above rely on)', () => {
  it('flags every way markup could fetch something and accepts fragment links', () => {
    assert.deepEqual(externalReferences('<a href="#arm-1">x</a><svg><rect fill="url(#g)"/></svg>'), []);
    assert.equal(externalReferences('<img src="https://x.example/a.png">').length, 2);
    assert.deepEqual(externalReferences('<a href="http://x.example">x</a>'), ['href="http://x.example"']);
    assert.equal(externalReferences('<div style="background:url(https://x.example/a.png)">').length, 1);
    assert.deepEqual(externalReferences('<style>@import "x.css"; p { background: url(y.png) }</style>'), ['@import', 'url(y.png']);
    assert.equal(externalReferences('<link rel="stylesheet" href="//x.example/a.css">').length, 2);
    assert.deepEqual(externalReferences('<p>see &lt;img src="http://x"&gt; in text</p>'), []);
  });
});
