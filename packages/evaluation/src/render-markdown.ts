import { OUTCOMES } from '@shadow-replay/contracts';
import { wilsonInterval } from './intervals.js';
import { latencyRows } from './latency-rows.js';
import { NOISE_METRIC_NAMES, controlArmOf, noiseStanding, type NoiseStanding } from './noise-view.js';
import { formatCount, formatPercent, formatPp, formatRatio, formatSignedMs, formatUsd } from './format.js';
import type { ArmReport, ArmSlices, Interval, Proportion, Report, Slice, SliceDimension } from './report-schema.js';

/**
 * Renders a report as Markdown: the conservation table first (a report whose counts do not
 * balance should be read with that in mind), then per arm its verdict, latency, paired deltas,
 * quality, the noise floor against the control arm, the judge (verdicts, calls, tokens, cost
 * and failures), errors, tokens and cost, and its slices by route, model and tenant.
 */
export function renderMarkdown(report: Report): string {
  const lines: string[] = [
    `# Shadow report: ${inline(report.experimentId)}`,
    '',
    `Window ${report.window.from} → ${report.window.to} · generated ${report.generatedAt}`,
    '',
    ...conservationSection(report),
  ];
  const controlArm = controlArmOf(report);
  for (const arm of report.arms) lines.push('', ...armSection(arm, controlArm));
  lines.push('', ...statisticsSection(report));
  return `${lines.join('\n')}\n`;
}

function statisticsSection(report: Report): string[] {
  const { statistics } = report;
  return [
    '## How the intervals were computed',
    '',
    `Every interval is ${formatPercent(statistics.confidence, 0)}. Rates: ${statistics.methods.rates}. Error-rate difference: ${statistics.methods.rateDifference}. ` +
      `Median deltas, p99 ratios and mean similarities: ${statistics.methods.bootstrap}; ${formatCount(statistics.bootstrapIterations)} resamples, seed ${statistics.seed}. ` +
      `${statistics.methods.tailQuantiles === undefined ? '' : `p99 intervals: ${statistics.methods.tailQuantiles}. `}${statistics.methods.winRate === undefined ? '' : `Judge win rate: ${statistics.methods.winRate}.`}`,
  ];
}

function conservationSection(report: Report): string[] {
  const { conservation } = report;
  const arms = Object.keys(conservation.byArm);
  const entries = arms.map((arm) => conservation.byArm[arm]!);
  const lines = [
    '## Conservation',
    '',
    `Balanced: **${conservation.balanced ? 'yes' : 'no'}** (consumed ${formatCount(conservation.consumed)}, pending ${formatCount(conservation.pending)}, evaluation records ${formatCount(conservation.evaluatedRecords)})`,
    '',
    ...table(
      ['outcome', ...arms.map(cell), 'total'],
      [
        ...OUTCOMES.map((outcome) => [
          outcome,
          ...entries.map((entry) => formatCount(entry.outcomes[outcome])),
          formatCount(conservation.outcomes[outcome]),
        ]),
        ['pending', ...entries.map((entry) => formatCount(entry.pending)), formatCount(conservation.pending)],
        ['**consumed**', ...entries.map((entry) => formatCount(entry.consumed)), formatCount(conservation.consumed)],
        ['evaluation records', ...entries.map((entry) => formatCount(entry.records)), formatCount(conservation.evaluatedRecords)],
        ['balanced', ...entries.map((entry) => yesNo(entry.balanced)), yesNo(conservation.balanced)],
      ],
      arms.length + 1,
    ),
  ];
  if (conservation.notes.length > 0) {
    lines.push('', 'Notes:', '', ...conservation.notes.map((note) => `- ${inline(note)}`));
  }
  return lines;
}

function armSection(arm: ArmReport, controlArm: string | undefined): string[] {
  const { latency, deltas, quality, errors, tokens, cost, judge } = arm;
  return [
    `## Arm ${inline(arm.arm)}`,
    '',
    `**Verdict: ${arm.verdict.status.toUpperCase()}**`,
    '',
    ...arm.verdict.reasons.map((reason) => `- ${inline(reason)}`),
    '',
    `### Latency (pairs where both sides answered ok)`,
    '',
    'Each row summarises one per-request figure over requests. ITL rows: each request’s own p50, p99 or longest gap between content chunks; they and output tokens/s count streamed answers with at least two content chunks.',
    '',
    ...table(
      ['metric', 'side', 'n', 'p50', 'p90', 'p99', 'max'],
      latencyRows(latency).flatMap(({ name, pair, format }) =>
        (['stable', 'candidate'] as const).map((side) => {
          const summary = pair[side];
          return [name, side, formatCount(summary.n), format(summary.p50), format(summary.p90), format(summary.p99), format(summary.max)];
        }),
      ),
      5,
    ),
    '',
    '### Deltas (candidate − stable, paired per request)',
    '',
    ...table(
      ['metric', 'n', 'p50', 'p50 95% CI', 'p99', 'p99 95% CI', 'p99 ratio', 'p99 ratio 95% CI'],
      (
        [
          ['E2E', deltas.e2eMs],
          ['TTFT', deltas.ttftMs],
        ] as const
      ).map(([name, delta]) => [
        name,
        formatCount(delta.n),
        formatSignedMs(delta.p50.value),
        interval(delta.p50.ci95, formatSignedMs),
        formatSignedMs(delta.p99.value),
        interval(delta.p99.ci95, formatSignedMs),
        formatRatio(delta.p99Ratio.value),
        interval(delta.p99Ratio.ci95, formatRatio),
      ]),
      7,
    ),
    '',
    `### Quality (${formatCount(quality.n)} pairs where both sides answered ok)`,
    '',
    ...table(
      ['metric', 'n', 'value', '95% CI'],
      [
        rateRow('exact match', quality.exactMatch),
        rateRow('normalized match', quality.normalizedMatch),
        rateRow('finish-reason agreement', quality.finishReasonAgreement),
        rateRow('tool-call agreement', quality.toolCallAgreement),
        ['mean edit similarity', formatCount(quality.editSimilarity.n), formatFraction(quality.editSimilarity.mean), interval(quality.editSimilarity.ci95, formatFraction)],
        ['mean ROUGE-L F1', formatCount(quality.rougeLF1.n), formatFraction(quality.rougeLF1.mean), interval(quality.rougeLF1.ci95, formatFraction)],
        rateRow('valid JSON, stable (of JSON-looking answers)', quality.jsonValid.stable),
        rateRow('valid JSON, candidate (of JSON-looking answers)', quality.jsonValid.candidate),
        rateRow('JSON structurally equal (both valid)', quality.jsonEqual),
        rateRow('refusals, stable', quality.refusal.stable),
        rateRow('refusals, candidate', quality.refusal.candidate),
        ['mean length ratio (candidate / stable)', formatCount(quality.n), formatRatio(quality.meanLengthRatio), '—'],
      ],
      3,
    ),
    '',
    ...noiseSection(noiseStanding(arm, controlArm)),
    '',
    ...judgeSection(judge),
    '',
    '### Errors',
    '',
    ...table(
      ['side', 'errors', 'of', 'rate', '95% CI'],
      [
        ...(['stable', 'candidate'] as const).map((side) => [
          side,
          formatCount(errors[side].n),
          formatCount(errors[side].total),
          formatPercent(errors[side].rate, 2),
          interval(errors[side].ci95, (value) => formatPercent(value, 2)),
        ]),
        ['candidate − stable', '', '', errors.difference.value === null ? '—' : formatPp(errors.difference.value), interval(errors.difference.ci95, formatPp)],
      ],
      4,
    ),
    '',
    '### Tokens and cost',
    '',
    ...table(
      ['side', 'n', 'prompt tokens', 'mean prompt', 'completion tokens', 'mean completion', 'cost', 'mean cost'],
      (['stable', 'candidate'] as const).map((side) => [
        side,
        formatCount(tokens[side].n),
        formatCount(tokens[side].prompt.sum),
        formatCount(tokens[side].prompt.mean),
        formatCount(tokens[side].completion.sum),
        formatCount(tokens[side].completion.mean),
        formatUsd(cost[side]?.totalUsd ?? null),
        formatUsd(cost[side]?.meanUsd ?? null),
      ]),
      7,
    ),
    ...(arm.slices === undefined ? [] : ['', ...slicesSection(arm.slices)]),
  ];
}

/**
 * The judge's verdicts, inconsistent ones on their own row: they count as ties in the win rate
 * (DESIGN §4), but a reader must see how many there were, since they measure position bias.
 */
function judgeSection(judge: ArmReport['judge']): string[] {
  const lines = ['### LLM judge (pairwise, position-swapped)', ''];
  const usage = judgeUsage(judge);
  if (judge.n === 0) return [...lines, 'No judge verdicts in this window.', ...(usage.length === 0 ? [] : ['', ...usage])];
  const share = (name: string, count: number) => [name, formatCount(count), formatPercent(count / judge.n), interval(wilsonInterval(count, judge.n), (value) => formatPercent(value))];
  return [
    ...lines,
    ...table(
      ['verdict', 'pairs', 'share', '95% CI'],
      [
        share('candidate wins', judge.wins),
        share('ties (both orders said tie, or identical answers)', judge.ties),
        share('inconsistent (the two orders disagreed; counted as ties)', judge.inconsistent),
        share('candidate loses', judge.losses),
        ['**win rate** (ties and inconsistent count ½)', formatCount(judge.n), formatPercent(judge.winRate), interval(judge.ci95, (value) => formatPercent(value))],
      ],
      3,
    ),
    ...(usage.length === 0 ? [] : ['', ...usage]),
  ];
}

/** What the judge cost and where it failed; empty when the judge was never asked about a pair. */
function judgeUsage(judge: ArmReport['judge']): string[] {
  const asked = judge.n + (judge.parseErrors ?? 0) + (judge.errors ?? 0) + (judge.notSampled ?? 0) + (judge.calls ?? 0);
  if (asked === 0) return [];
  // Only older evaluators recorded unreachable judges as a verdict; the column shows when they did.
  const unreachable = (judge.errors ?? 0) > 0;
  return table(
    ['judge calls', 'retried attempts', 'tokens', 'cost', 'parse failures', ...(unreachable ? ['unreachable'] : []), 'not sampled'],
    [
      [
        formatCount(judge.calls ?? null),
        formatCount(judge.retries ?? null),
        formatCount(judge.tokens ?? null),
        formatUsd(judge.costUsd ?? null),
        formatCount(judge.parseErrors ?? null),
        ...(unreachable ? [formatCount(judge.errors ?? null)] : []),
        formatCount(judge.notSampled ?? null),
      ],
    ],
    unreachable ? 7 : 6,
  ).concat([
    '',
    'Two calls per judged pair (both orders), none for identical answers; retried attempts followed a transient failure (connection error, 5xx, 429). ' +
      'Parse failures: pairs whose judge answer could not be read as a verdict (its raw text is kept in the record); they and unsampled pairs are not in the win rate. ' +
      'A pair whose judge stayed unreachable is not here: it ended `eval_failed` (see the conservation table).',
  ]);
}

/**
 * The candidate's disagreement with stable against the control arm's (the model's own noise),
 * per metric, with the margins the regression flag reads (DESIGN §4).
 */
function noiseSection(standing: NoiseStanding): string[] {
  const lines = ['### Noise floor (against the control arm)', ''];
  switch (standing.kind) {
    case 'no_control':
      return [...lines, 'No control arm in this experiment: the noise floor was not measured, and no disagreement is checked against it.'];
    case 'control':
      return [...lines, 'This is the control arm (the stable model asked again): its disagreement with stable is the noise floor the other arms are compared with.'];
    case 'unreadable':
      return [...lines, 'The report holds a noise comparison this renderer cannot read; see the JSON report.'];
    case 'compared':
      break;
  }
  const { noise } = standing;
  if (noise.metrics.length === 0) return [...lines, `Control arm \`${cell(noise.controlArm)}\`: no metric has data on both arms.`];
  return [
    ...lines,
    `Control arm \`${cell(noise.controlArm)}\`. A metric regresses only when the candidate’s rate R exceeds the control’s N, |R − N| / (R + N) > ${noise.relativeThreshold} and R − N > ${(noise.absoluteThreshold * 100).toFixed(2)} pp.`,
    '',
    ...table(
      ['metric', 'candidate vs stable (R)', 'control vs stable (N)', 'R − N', 'relative', 'regression'],
      noise.metrics.map((metric) => [
        `${NOISE_METRIC_NAMES[metric.metric] ?? cell(metric.metric)} (\`${cell(metric.metric)}\`)`,
        formatPercent(metric.candidateRate),
        formatPercent(metric.controlRate),
        formatPp(metric.absolute),
        metric.relative.toFixed(2),
        metric.regression ? '**yes**' : 'no',
      ]),
      5,
    ),
  ];
}

const DIMENSION_NAMES: Record<SliceDimension, string> = { route: 'Route', model: 'Model', tenant: 'Tenant' };

function slicesSection(slices: ArmSlices): string[] {
  const lines = [
    '### Slices',
    '',
    `Per route, requested model and tenant. Slices with fewer than ${formatCount(slices.minSamples)} records are marked *too small*: shown, but too few to decide anything, and without a bootstrap interval. ` +
      'Error rates count the slice’s evaluation records only (`candidate_error` outcomes are counted per arm).',
  ];
  for (const dimension of ['route', 'model', 'tenant'] as const) {
    const list = slices[dimension];
    lines.push('', `#### ${DIMENSION_NAMES[dimension]}`, '');
    if (list.every((slice) => slice.kind === 'missing')) {
      lines.push(`No record carries a ${dimension}.`);
      continue;
    }
    lines.push(
      ...table(
        [dimension, 'sample', 'records', 'stable errors', 'candidate errors', 'E2E p50 Δ', 'p50 95% CI', 'E2E p99 Δ', 'p99 95% CI', 'judge win rate', 'judge 95% CI'],
        list.map((slice) => [
          sliceName(slice, dimension),
          slice.tooSmall ? `too small (< ${formatCount(slices.minSamples)})` : 'ok',
          formatCount(slice.records),
          formatPercent(slice.errors.stable.rate, 2),
          `${formatPercent(slice.errors.candidate.rate, 2)} ${interval(slice.errors.candidate.ci95, (value) => formatPercent(value, 2))}`,
          formatSignedMs(slice.e2eDelta.p50.value),
          interval(slice.e2eDelta.p50.ci95, formatSignedMs),
          formatSignedMs(slice.e2eDelta.p99.value),
          interval(slice.e2eDelta.p99.ci95, formatSignedMs),
          slice.judge.n === 0 ? '—' : `${formatPercent(slice.judge.winRate)} (n ${formatCount(slice.judge.n)}, ${formatCount(slice.judge.inconsistent)} inconsistent)`,
          interval(slice.judge.ci95, (value) => formatPercent(value)),
        ]),
        9,
      ),
    );
  }
  return lines;
}

function sliceName(slice: Slice, dimension: SliceDimension): string {
  if (slice.kind === 'other') return `*${formatCount(slice.values)} other ${dimension}s*`;
  if (slice.kind === 'missing') return `*no ${dimension}*`;
  return `\`${cell(slice.value ?? '').replaceAll('`', "'")}\``;
}

/** A Markdown table; the last `numeric` columns are right-aligned. */
function table(header: readonly string[], rows: readonly (readonly string[])[], numeric: number): string[] {
  const align = header.map((_, index) => (index >= header.length - numeric ? '---:' : '---'));
  return [row(header), row(align), ...rows.map(row)];
}

function row(cells: readonly string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** Arm names and notes are free text: keep them from breaking a table or a line. */
function cell(text: string): string {
  return inline(text).replaceAll('|', '\\|');
}

function inline(text: string): string {
  return text.replace(/\s+/gu, ' ');
}

function interval(ci: Interval | null, format: (value: number) => string): string {
  return ci === null ? '—' : `[${format(ci.low)}, ${format(ci.high)}]`;
}

function rateRow(name: string, rate: Proportion): string[] {
  return [name, formatCount(rate.n), formatPercent(rate.rate), interval(rate.ci95, (value) => formatPercent(value))];
}

function formatFraction(value: number | null): string {
  return value === null ? '—' : value.toFixed(3);
}

function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}
