import { Outcome, evaluationKey, type EvaluationRecord, type SideFigures } from '@shadow-replay/contracts';
import {
  DEFAULT_BOOTSTRAP_ITERATIONS,
  DEFAULT_BOOTSTRAP_SEED,
  MIN_BOOTSTRAP_ITERATIONS,
  meanStatistic,
  pairedBootstrapBothSides,
  pairedBootstrapIntervals,
  quantileStatistic,
  type ResamplePairStatistic,
} from './bootstrap.js';
import { readComparisonExtra } from './comparison-extras.js';
import { compareWithControl, type NoiseOptions } from './noise-floor.js';
import { computeConservation, type OutcomeCounters } from './conservation.js';
import { EvaluationError, EvaluationErrorCode } from './errors.js';
import { errorRates } from './error-rates.js';
import { Z_95, wilsonInterval } from './intervals.js';
import { judgeSummary } from './judge-summary.js';
import { P99_INTERVAL_MIN_SAMPLES, TOO_FEW_FOR_P99_INTERVAL, p99Estimate } from './quantile-interval.js';
import { deriveSeed } from './random.js';
import { latencySamples, worstPairs } from './report-samples.js';
import { DEFAULT_MAX_SLICE_VALUES, sliceArm } from './slices.js';
import type { ArmConservation, ArmCounts, Estimate, Proportion, Report, Statistics } from './report-schema.js';
import { mean, percentile, summarize } from './stats.js';
import { compileVerdictOptions, decideVerdict, type ArmFigures, type CompiledVerdictOptions, type VerdictOptions } from './verdict.js';

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
  /** Notes for the conservation table from whoever selected the records and counters (how a window was drawn, say). */
  notes?: readonly string[];
  /**
   * Why requests reached an outcome, by arm and outcome: `{ cand: { shed_budget: { cost: 3 } } }`
   * (the budget limit reached). Absent: the report says nothing of reasons.
   */
  outcomeReasons?: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, number>>>>>>;
}

/** Options of {@link buildReport}: the verdict's gates and the bootstrap's seed and size. */
export interface ReportOptions extends VerdictOptions {
  /**
   * Base seed of every bootstrap interval in the report (an integer in [0, 2³²)); recorded in
   * `report.statistics.seed`. Each arm and metric derives its own stream from it, so the same
   * records and seed always give the same report. @defaultValue {@link DEFAULT_BOOTSTRAP_SEED}
   */
  seed?: number;
  /** Resamples per bootstrap interval, at least 100. @defaultValue {@link DEFAULT_BOOTSTRAP_ITERATIONS} (2000) */
  bootstrapIterations?: number;
  /**
   * Values shown per slice dimension (route, model, tenant); the least frequent others are folded
   * into one `other` slice. @defaultValue {@link DEFAULT_MAX_SLICE_VALUES} (20)
   */
  maxSliceValues?: number;
  /** The arm that asks the stable model again; its disagreement with stable is the noise floor. */
  controlArm?: string | undefined;
  noise?: NoiseOptions | undefined;
}

interface CompiledReportOptions {
  verdict: CompiledVerdictOptions;
  seed: number;
  iterations: number;
  maxSliceValues: number;
}

const CONFIDENCE = 0.95;

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
 * Every figure that estimates something carries a 95% interval: Wilson for rates, a tie-aware
 * score interval for the judge's win rate, Newcombe's hybrid score for the error-rate difference,
 * fractional order statistics for p99 deltas, and a seeded paired bootstrap (requests are the
 * resampling unit) for median deltas, p99 ratios and mean similarities; `report.statistics`
 * records the methods and the seed. A p99 interval needs {@link P99_INTERVAL_MIN_SAMPLES} pairs
 * (null with a `note` below). Records are put in request-id order first, so the report is
 * a pure function of the set of records, the counters and the options.
 *
 * Each arm is also sliced by the records' route, requested model and tenant (`slices`, see
 * {@link sliceArm}); a slice below `minSamples` records is shown and marked `tooSmall`.
 *
 * Each arm also carries, for the HTML report, the per-request values behind its plots
 * (`samples`, thinned to `MAX_SAMPLE_VALUES` per series) and its `worstPairs`, with answer
 * excerpts when the records carry them (see `report-samples.ts`).
 *
 * Cost: each bootstrap is O(iterations · n) for n pairs (six per arm, and at most three more for
 * the slices' E2E deltas), about a second for 2,000 resamples of 10⁵ pairs.
 *
 * @throws {@link EvaluationError} `EVAL_INVALID_INPUT` for an unreadable time, a window that
 *   ends before it starts, a record of another experiment or a malformed counter;
 *   `EVAL_INVALID_OPTIONS` for a bad gate, seed or number of resamples.
 */
export function buildReport(input: ReportInput, options: ReportOptions = {}): Report {
  const compiled = compileReportOptions(options);
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
  conservation.notes.push(...(input.notes ?? []));
  const budgetLimits = (arm: string) => input.outcomeReasons?.[arm]?.[Outcome.shedBudget];
  for (const arm of arms) {
    const limits = Object.entries(budgetLimits(arm) ?? {}).filter(([, count]) => count > 0);
    if (limits.length > 0) conservation.notes.push(`arm ${arm}: shed_budget by the limit reached: ${limits.map(([limit, count]) => `${limit.replace('_', ' ')} ${count}`).join(', ')}`);
  }

  return {
    schemaVersion: 1,
    experimentId: input.experimentId,
    window: { from, to },
    generatedAt,
    statistics: statistics(compiled),
    conservation,
    arms: withNoiseFloor(
      arms.map((arm) => armFigures(arm, recordsByArm.get(arm) ?? [], conservation.byArm[arm]!, compiled)),
      options.controlArm,
      options.noise,
    ).map((figures) => {
      const limits = budgetLimits(figures.arm);
      return { ...figures, ...(limits === undefined ? {} : { budgetLimitsReached: { ...limits } }), verdict: decideVerdict(figures, conservation.byArm[figures.arm]!.balanced, compiled.verdict) };
    }),
  };
}

/** Compares every candidate arm with the control arm, when the experiment has one. */
function withNoiseFloor(figures: ArmFigures[], controlArm: string | undefined, options: NoiseOptions | undefined): ArmFigures[] {
  const control = controlArm === undefined ? undefined : figures.find((arm) => arm.arm === controlArm);
  if (control === undefined) return figures;
  return figures.map((arm) => (arm.arm === controlArm ? arm : { ...arm, noise: { ...compareWithControl(arm, control, control.arm, options) } }));
}

function compileReportOptions(options: ReportOptions): CompiledReportOptions {
  const {
    seed = DEFAULT_BOOTSTRAP_SEED,
    bootstrapIterations: iterations = DEFAULT_BOOTSTRAP_ITERATIONS,
    maxSliceValues = DEFAULT_MAX_SLICE_VALUES,
    controlArm: _control,
    noise: _noise,
    ...gates
  } = options;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
    throw new EvaluationError(EvaluationErrorCode.invalidOptions, `report options: seed must be an integer in [0, 2^32) (got ${String(seed)})`);
  }
  if (!Number.isSafeInteger(iterations) || iterations < MIN_BOOTSTRAP_ITERATIONS) {
    throw new EvaluationError(
      EvaluationErrorCode.invalidOptions,
      `report options: bootstrapIterations must be an integer >= ${MIN_BOOTSTRAP_ITERATIONS} (got ${String(iterations)})`,
    );
  }
  if (!Number.isSafeInteger(maxSliceValues) || maxSliceValues < 1) {
    throw new EvaluationError(EvaluationErrorCode.invalidOptions, `report options: maxSliceValues must be an integer >= 1 (got ${String(maxSliceValues)})`);
  }
  return { verdict: compileVerdictOptions(gates), seed, iterations, maxSliceValues };
}

function statistics(options: CompiledReportOptions): Statistics {
  return {
    confidence: CONFIDENCE,
    seed: options.seed,
    bootstrapIterations: options.iterations,
    methods: {
      rates: `Wilson score interval, z = ${Z_95}`,
      rateDifference: 'Newcombe hybrid score interval (method 10) of candidate rate − stable rate',
      bootstrap: 'percentile bootstrap resampling requests (each pair kept whole), xoshiro128** seeded per arm and metric from seed',
      winRate: `score interval of (wins + ties / 2) / n with the variance of a score in {0, ½, 1}, p(1 − p) − ties / 4n (Wilson's when there is no tie), z = ${Z_95}`,
      tailQuantiles:
        `p99 of the per-request deltas: distribution-free interval by fractional order statistics (Hutson 1999); p99 ratio: the paired percentile bootstrap; ` +
        `both only from ${P99_INTERVAL_MIN_SAMPLES} pairs on (null below, with a note): with fewer, the true p99 lies above every observation more than 2.5% of the time`,
    },
  };
}

function armFigures(arm: string, records: readonly EvaluationRecord[], conservation: ArmConservation, options: CompiledReportOptions): ArmFigures {
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
  const bootstrap = (metric: string) => ({ seed: deriveSeed(options.seed, `${arm}/${metric}`), iterations: options.iterations, confidence: CONFIDENCE });

  const e2eDelta = pairedDelta(
    paired.map((record) => record.deltas.e2eMs),
    paired.map((record) => [record.stable.e2eMs, record.candidate.e2eMs]),
    bootstrap('e2eMs'),
  );
  return {
    arm,
    counts,
    latency: {
      e2eMs: sides(paired, (side) => side.e2eMs),
      ttftMs: sides(paired, (side) => side.ttftMs),
      tpotMs: sides(paired, (side) => side.tpotMs),
      itlP50Ms: sides(paired, (side) => side.itl?.p50 ?? null),
      itlP99Ms: sides(paired, (side) => side.itl?.p99 ?? null),
      itlMaxMs: sides(paired, (side) => side.itl?.max ?? null),
      outputTokensPerSec: sides(paired, (side) => side.outputTokensPerSec ?? null),
    },
    deltas: {
      e2eMs: e2eDelta,
      ttftMs: pairedDelta(
        present(paired.map((record) => record.deltas.ttftMs)),
        present(paired.map((record) => bothPresent(record.stable.ttftMs, record.candidate.ttftMs))),
        bootstrap('ttftMs'),
      ),
    },
    errors: errorRates(
      { successes: stableFailedRecords, n: records.length },
      { successes: candidateErrorOutcomes + candidateFailedRecords, n: candidateErrorOutcomes + records.length },
    ),
    tokens: {
      stable: tokens(records.map((record) => record.stable)),
      candidate: tokens(records.map((record) => record.candidate)),
    },
    cost: {
      stable: cost(records.map((record) => record.stable)),
      candidate: cost(records.map((record) => record.candidate)),
    },
    quality: quality(paired, bootstrap),
    judge: judgeSummary(records),
    noise: null,
    samples: latencySamples(paired),
    worstPairs: worstPairs(paired),
    slices: sliceArm(records, {
      arm,
      minSamples: options.verdict.minSamples,
      maxValues: options.maxSliceValues,
      bootstrap: { seed: options.seed, iterations: options.iterations, confidence: CONFIDENCE },
      armE2eDelta: e2eDelta,
    }),
  };
}

type BootstrapSettings = { seed: number; iterations: number; confidence: number };

function quality(paired: readonly EvaluationRecord[], bootstrap: (metric: string) => BootstrapSettings): ArmFigures['quality'] {
  const extra = <K extends Parameters<typeof readComparisonExtra>[1]>(key: K) =>
    paired.map((record) => readComparisonExtra(record.comparison, key)).filter((value) => value !== undefined);
  const exactMatch = proportion(paired.map((record) => record.comparison.exactMatch));
  const normalizedMatch = proportion(paired.map((record) => record.comparison.normalizedMatch));
  const finishReasonAgreement = proportion(paired.map((record) => record.comparison.finishReasonAgreement));
  const jsonValid = extra('jsonValid');
  const refusal = extra('refusal');
  return {
    n: paired.length,
    exactMatchRate: exactMatch.rate,
    normalizedMatchRate: normalizedMatch.rate,
    finishReasonAgreementRate: finishReasonAgreement.rate,
    meanLengthRatio: mean(present(paired.map((record) => record.comparison.lengthRatio))),
    exactMatch,
    normalizedMatch,
    finishReasonAgreement,
    toolCallAgreement: proportion(extra('toolCallAgreement')),
    editSimilarity: bootstrapMean(present(extra('editSimilarity')), bootstrap('editSimilarity')),
    rougeLF1: bootstrapMean(present(extra('rougeLF1')), bootstrap('rougeLF1')),
    jsonValid: {
      stable: proportion(present(jsonValid.map((sides) => sides.stable))),
      candidate: proportion(present(jsonValid.map((sides) => sides.candidate))),
    },
    jsonEqual: proportion(present(extra('jsonDiff')).map((diff) => diff.added + diff.removed + diff.changed === 0)),
    refusal: {
      stable: proportion(present(refusal.map((sides) => sides.stable))),
      candidate: proportion(present(refusal.map((sides) => sides.candidate))),
    },
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
  // Sorted by request id, so the bootstrap (which resamples by position) does not depend on the
  // order the records were read in.
  const sorted = [...byKey.values()].sort((a, b) => (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0));
  for (const record of sorted) {
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

/**
 * The p50 of the per-request deltas with a paired bootstrap interval (at least two pairs), their
 * p99 with a distribution-free interval ({@link quantileInterval}), and the ratio candidate p99 /
 * stable p99 with a paired bootstrap of both sides. Both p99 intervals need
 * {@link P99_INTERVAL_MIN_SAMPLES} pairs: a percentile bootstrap of a p99 below that covers 65–80%
 * instead of 95% (`test/coverage.test.ts`); the ratio's also needs every stable value above 0, so
 * that no resample divides by a zero p99.
 */
function pairedDelta(deltas: readonly number[], pairs: readonly (readonly [number, number])[], settings: BootstrapSettings): ArmFigures['deltas']['e2eMs'] {
  const n = deltas.length;
  const p50Interval = n >= 2 ? pairedBootstrapIntervals(deltas, [quantileStatistic(0.5)], settings)[0]! : null;
  const stable = pairs.map(([value]) => value);
  const candidate = pairs.map(([, value]) => value);
  let p99Ratio: Estimate = { value: null, ci95: null };
  if (pairs.length > 0) {
    const stableP99 = percentile(stable, 0.99);
    const candidateP99 = percentile(candidate, 0.99);
    const value = stableP99 === 0 ? (candidateP99 === 0 ? 1 : null) : candidateP99 / stableP99;
    const ratio: ResamplePairStatistic = (stableResample, candidateResample) => candidateResample.quantile(0.99) / stableResample.quantile(0.99);
    if (pairs.length < P99_INTERVAL_MIN_SAMPLES) p99Ratio = { value, ci95: null, note: TOO_FEW_FOR_P99_INTERVAL };
    else if (stable.every((value) => value > 0)) {
      p99Ratio = { value, ci95: pairedBootstrapBothSides(stable, candidate, ratio, { ...settings, seed: deriveSeed(settings.seed, 'p99Ratio') }) };
    } else p99Ratio = { value, ci95: null, note: 'a stable latency of 0 ms: a resample could divide by a p99 of 0' };
  }
  return { n, p50: { value: n === 0 ? null : percentile(deltas, 0.5), ci95: p50Interval }, p99: p99Estimate(deltas), p99Ratio };
}


function proportion(flags: readonly boolean[]): Proportion {
  const n = flags.length;
  const count = flags.filter(Boolean).length;
  return { n, count, rate: n === 0 ? null : count / n, ci95: n === 0 ? null : wilsonInterval(count, n) };
}

function bootstrapMean(values: readonly number[], settings: BootstrapSettings): ArmFigures['quality']['editSimilarity'] {
  return {
    n: values.length,
    mean: mean(values),
    ci95: values.length >= 2 ? pairedBootstrapIntervals(values, [meanStatistic], settings)[0]! : null,
  };
}

function bothPresent(stable: number | null, candidate: number | null): [number, number] | null {
  return stable === null || candidate === null ? null : [stable, candidate];
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
