import { OUTCOMES } from '@shadow-replay/contracts';
import { formatCount, formatMs, formatPercent, formatPp, formatRatio, formatSignedMs, formatUsd } from './format.js';
import type { ArmReport, ArmSlices, Interval, Proportion, Report, Slice, SliceDimension } from './report-schema.js';

/**
 * Renders a report as Markdown: the conservation table first (a report whose counts do not
 * balance should be read with that in mind), then per arm its verdict, latency, paired deltas,
 * quality, errors, tokens and cost, and its slices by route, model and tenant.
 */
export function renderMarkdown(report: Report): string {
  const lines: string[] = [
    `# Shadow report: ${inline(report.experimentId)}`,
    '',
    `Window ${report.window.from} → ${report.window.to} · generated ${report.generatedAt}`,
    '',
    ...conservationSection(report),
  ];
  for (const arm of report.arms) lines.push('', ...armSection(arm));
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

function armSection(arm: ArmReport): string[] {
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
    ...table(
      ['metric', 'side', 'n', 'p50', 'p90', 'p99', 'max'],
      (
        [
          ['E2E', latency.e2eMs],
          ['TTFT', latency.ttftMs],
          ['TPOT', latency.tpotMs],
        ] as const
      ).flatMap(([name, pair]) =>
        (['stable', 'candidate'] as const).map((side) => {
          const summary = pair[side];
          return [name, side, formatCount(summary.n), formatMs(summary.p50), formatMs(summary.p90), formatMs(summary.p99), formatMs(summary.max)];
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
        [
          'judge',
          formatCount(judge.n),
          judge.n === 0 ? 'not run' : `${judge.wins} wins, ${judge.ties} ties, ${judge.losses} losses; win rate ${formatPercent(judge.winRate)}`,
          interval(judge.ci95, (value) => formatPercent(value)),
        ],
      ],
      3,
    ),
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
