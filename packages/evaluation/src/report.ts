import { Outcome, evaluationKey, type EvaluationRecord, type SideFigures } from '@shadow-replay/contracts';
import { computeConservation, type OutcomeCounters } from './conservation.js';
import { EvaluationError, EvaluationErrorCode } from './errors.js';
import type { ArmConservation, ArmCounts, Report } from './report-schema.js';
import { mean, percentile, summarize } from './stats.js';
import { compileVerdictOptions, decideVerdict, type ArmFigures, type VerdictOptions } from './verdict.js';

/** A point in time: ms since the epoch, an ISO-8601 string or a Date. Reports print ISO strings. */
export type TimeInput = number | string | Date;

/** What a report is built from. */
export interface ReportInput {
  experimentId: string;
  /** The window the records were read for; descriptive only, records are not filtered by it. */
  window: { from: TimeInput; to: TimeInput };
  generatedAt: TimeInput;
  /**
   * Evaluation records of the experiment, each (experimentId, requestId, arm) key once. A key
   * that still appears twice counts once (the latest `evaluatedAt` wins) and is noted.
   */
  records: readonly EvaluationRecord[];
  /** Outcome counters by candidate arm, see {@link OutcomeCounters}. */
  outcomes: Readonly<Record<string, OutcomeCounters>>;
}

/** Options of {@link buildReport}; today only the verdict's gates. */
export type ReportOptions = VerdictOptions;

/**
 * Builds the report of one experiment (DESIGN §5): conservation first, then one entry per arm
 * (sorted by name; every arm that has counters or records).
 *
 * Per arm, latency, deltas and quality are computed over the pairs where BOTH sides answered
 * `ok`, so both sides are measured on the same requests and a fast error cannot flatter a
 * latency; errors are reported on their own. Tokens and cost count every record, errors
 * included, because failed requests are paid for too. The candidate error rate is
 * (`candidate_error` outcomes + records whose candidate failed) / (`candidate_error` + records);
 * the stable error rate is records whose stable side failed / records.
 *
 * @throws {@link EvaluationError} `EVAL_INVALID_INPUT` for an unreadable time, a window that
 *   ends before it starts, a record of another experiment or a malformed counter;
 *   `EVAL_INVALID_OPTIONS` for a bad gate.
 */
export function buildReport(input: ReportInput, options: ReportOptions = {}): Report {
  const verdictOptions = compileVerdictOptions(options);
  const from = toIso(input.window.from, 'window.from');
  const to = toIso(input.window.to, 'window.to');
  if (Date.parse(from) > Date.parse(to)) {
    throw new EvaluationError(EvaluationErrorCode.invalidInput, `report: window.from (${from}) is after window.to (${to})`);
  }
  const generatedAt = toIso(input.generatedAt, 'generatedAt');

  const { byArm: recordsByArm, duplicates } = groupRecords(input.experimentId, input.records);
  const arms = [...new Set([...Object.keys(input.outcomes), ...recordsByArm.keys()])].sort();
  const recordCounts = new Map([...recordsByArm].map(([arm, records]) => [arm, records.length]));
  const conservation = computeConservation(input.outcomes, recordCounts, arms);
  if (duplicates > 0) {
    conservation.notes.push(`${duplicates} duplicate evaluation record(s) counted once (the latest evaluatedAt kept)`);
  }

  return {
    schemaVersion: 1,
    experimentId: input.experimentId,
    window: { from, to },
    generatedAt,
    conservation,
    arms: arms.map((arm) => {
      const armConservation = conservation.byArm[arm]!;
      const figures = armFigures(arm, recordsByArm.get(arm) ?? [], armConservation);
      return { ...figures, verdict: decideVerdict(figures, armConservation.balanced, verdictOptions) };
    }),
  };
}

function armFigures(arm: string, records: readonly EvaluationRecord[], conservation: ArmConservation): ArmFigures {
  const paired = records.filter((record) => record.stable.outcome === 'ok' && record.candidate.outcome === 'ok');
  const counts = {
    consumed: conservation.consumed,
    ...conservation.outcomes,
    pending: conservation.pending,
    records: records.length,
  } satisfies ArmCounts;

  const candidateFailedRecords = records.filter((record) => record.candidate.outcome !== 'ok').length;
  const stableFailedRecords = records.filter((record) => record.stable.outcome !== 'ok').length;
  const candidateErrorOutcomes = conservation.outcomes[Outcome.candidateError];

  return {
    arm,
    counts,
    latency: {
      e2eMs: sides(paired, (side) => side.e2eMs),
      ttftMs: sides(paired, (side) => side.ttftMs),
      tpotMs: sides(paired, (side) => side.tpotMs),
    },
    deltas: {
      e2eMs: pairedDelta(paired.map((record) => record.deltas.e2eMs)),
      ttftMs: pairedDelta(present(paired.map((record) => record.deltas.ttftMs))),
    },
    errors: {
      stable: errorRate(stableFailedRecords, records.length),
      candidate: errorRate(candidateErrorOutcomes + candidateFailedRecords, candidateErrorOutcomes + records.length),
    },
    tokens: {
      stable: tokens(records.map((record) => record.stable)),
      candidate: tokens(records.map((record) => record.candidate)),
    },
    cost: {
      stable: cost(records.map((record) => record.stable)),
      candidate: cost(records.map((record) => record.candidate)),
    },
    quality: {
      n: paired.length,
      exactMatchRate: rate(paired, (record) => record.comparison.exactMatch),
      normalizedMatchRate: rate(paired, (record) => record.comparison.normalizedMatch),
      finishReasonAgreementRate: rate(paired, (record) => record.comparison.finishReasonAgreement),
      meanLengthRatio: mean(present(paired.map((record) => record.comparison.lengthRatio))),
    },
    judge: { n: 0, wins: 0, ties: 0, losses: 0, inconsistent: 0, winRate: null, ci95: null },
    noise: null,
  };
}

function groupRecords(
  experimentId: string,
  records: readonly EvaluationRecord[],
): { byArm: Map<string, EvaluationRecord[]>; duplicates: number } {
  const byKey = new Map<string, EvaluationRecord>();
  for (const record of records) {
    if (record.experimentId !== experimentId) {
      throw new EvaluationError(
        EvaluationErrorCode.invalidInput,
        `report: record ${evaluationKey(record.experimentId, record.requestId, record.arm)} belongs to another experiment than ${experimentId}`,
      );
    }
    const key = evaluationKey(record.experimentId, record.requestId, record.arm);
    const seen = byKey.get(key);
    if (seen === undefined || record.evaluatedAt > seen.evaluatedAt) byKey.set(key, record);
  }
  const byArm = new Map<string, EvaluationRecord[]>();
  for (const record of byKey.values()) {
    const list = byArm.get(record.arm);
    if (list === undefined) byArm.set(record.arm, [record]);
    else list.push(record);
  }
  return { byArm, duplicates: records.length - byKey.size };
}

function sides(records: readonly EvaluationRecord[], pick: (side: SideFigures) => number | null): ArmFigures['latency']['e2eMs'] {
  return {
    stable: summarize(present(records.map((record) => pick(record.stable)))),
    candidate: summarize(present(records.map((record) => pick(record.candidate)))),
  };
}

function pairedDelta(deltas: readonly number[]): ArmFigures['deltas']['e2eMs'] {
  // ci95 stays null until the seeded bootstrap exists.
  const at = (q: number) => ({ value: deltas.length === 0 ? null : percentile(deltas, q), ci95: null });
  return { n: deltas.length, p50: at(0.5), p99: at(0.99) };
}

function errorRate(n: number, total: number): ArmFigures['errors']['stable'] {
  return { n, total, rate: total === 0 ? null : n / total };
}

function tokens(sides: readonly SideFigures[]): ArmFigures['tokens']['stable'] {
  const known = sides.filter((side) => side.promptTokens !== null && side.completionTokens !== null);
  const prompt = known.map((side) => side.promptTokens!);
  const completion = known.map((side) => side.completionTokens!);
  return {
    n: known.length,
    prompt: { sum: sum(prompt), mean: mean(prompt) },
    completion: { sum: sum(completion), mean: mean(completion) },
  };
}

function cost(sides: readonly SideFigures[]): ArmFigures['cost']['stable'] {
  const known = present(sides.map((side) => side.costUsd));
  if (known.length === 0) return null;
  const total = sum(known);
  return { n: known.length, totalUsd: total, meanUsd: total / known.length };
}

function rate<T>(items: readonly T[], predicate: (item: T) => boolean): number | null {
  if (items.length === 0) return null;
  return items.filter(predicate).length / items.length;
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

function present<T>(values: readonly (T | null)[]): T[] {
  return values.filter((value): value is T => value !== null);
}

function toIso(value: TimeInput, field: string): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new EvaluationError(EvaluationErrorCode.invalidInput, `report: ${field} must be ms since the epoch, an ISO-8601 string or a Date (got ${String(value)})`);
  }
  return date.toISOString();
}
