import { OUTCOMES } from '@shadow-replay/contracts';
import { formatCount, formatMs, formatPercent, formatRatio, formatSignedMs, formatUsd } from './format.js';
import type { ArmReport, Interval, Report } from './report-schema.js';

/**
 * Renders a report as Markdown: the conservation table first (a report whose counts do not
 * balance should be read with that in mind), then per arm its verdict, latency, paired deltas,
 * quality, errors, tokens and cost.
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
  return `${lines.join('\n')}\n`;
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
      ['metric', 'n', 'p50', 'p50 95% CI', 'p99', 'p99 95% CI'],
      (
        [
          ['E2E', deltas.e2eMs],
          ['TTFT', deltas.ttftMs],
        ] as const
      ).map(([name, delta]) => [
        name,
        formatCount(delta.n),
        formatSignedMs(delta.p50.value),
        interval(delta.p50.ci95),
        formatSignedMs(delta.p99.value),
        interval(delta.p99.ci95),
      ]),
      5,
    ),
    '',
    `### Quality (${formatCount(quality.n)} pairs where both sides answered ok)`,
    '',
    ...table(
      ['metric', 'value'],
      [
        ['exact match', formatPercent(quality.exactMatchRate)],
        ['normalized match', formatPercent(quality.normalizedMatchRate)],
        ['finish-reason agreement', formatPercent(quality.finishReasonAgreementRate)],
        ['mean length ratio (candidate / stable)', formatRatio(quality.meanLengthRatio)],
        ['judge', judge.n === 0 ? 'not run' : `${judge.wins} wins, ${judge.ties} ties, ${judge.losses} losses; win rate ${formatPercent(judge.winRate)}`],
      ],
      1,
    ),
    '',
    '### Errors',
    '',
    ...table(
      ['side', 'errors', 'of', 'rate'],
      (['stable', 'candidate'] as const).map((side) => [side, formatCount(errors[side].n), formatCount(errors[side].total), formatPercent(errors[side].rate, 2)]),
      3,
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
  ];
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

function interval(ci: Interval | null): string {
  return ci === null ? '—' : `[${formatSignedMs(ci.low)}, ${formatSignedMs(ci.high)}]`;
}

function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}
