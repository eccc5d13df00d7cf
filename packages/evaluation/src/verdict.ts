import { EvaluationError, EvaluationErrorCode } from './errors.js';
import { formatMs, formatPercent, formatPp, formatRatio } from './format.js';
import { P99_INTERVAL_MIN_SAMPLES, TOO_FEW_FOR_P99_INTERVAL } from './quantile-interval.js';
import { VerdictStatus, type ArmReport, type Verdict } from './report-schema.js';

/** Gates of the per-arm verdict. */
export interface VerdictOptions {
  /** Fewer evaluated pairs than this make the verdict inconclusive. @defaultValue 30 */
  minSamples?: number;
  /**
   * Largest tolerated excess of the candidate's error rate over stable's, as a fraction
   * (0.005 = 0.5 percentage points). Read on the 95% interval of the excess: the arm fails when
   * the interval's lower end is above it, passes when its upper end is at or below it, and is
   * inconclusive when the interval straddles it. With no errors on either side the upper end is
   * about 3.84 / n, so a 0.5-point gate needs roughly 800 requests per side to pass.
   * @defaultValue 0.005
   */
  maxErrorRateIncrease?: number;
  /**
   * Largest tolerated ratio candidate p99 E2E / stable p99 E2E. The arm fails when the whole
   * 95% interval of the ratio is above it and is inconclusive when the interval straddles it.
   * @defaultValue 1.2
   */
  maxP99E2eRatio?: number;
  /**
   * Smallest tolerated judge win rate of the candidate (ties count half). Checked only when the
   * judge ran: passes when the 95% interval's lower end reaches it, fails when its upper end is
   * below it, is inconclusive in between. @defaultValue 0.45
   */
  minJudgeWinRate?: number;
}

export type CompiledVerdictOptions = Readonly<Required<VerdictOptions>>;

export const DEFAULT_VERDICT_OPTIONS: CompiledVerdictOptions = Object.freeze({
  minSamples: 30,
  maxErrorRateIncrease: 0.005,
  maxP99E2eRatio: 1.2,
  minJudgeWinRate: 0.45,
});

/** What the verdict looks at: an arm's report without its verdict. */
export type ArmFigures = Omit<ArmReport, 'verdict'>;

// A gap exactly at a gate passes; this keeps floating-point rounding from deciding it.
const EPSILON = 1e-12;

/**
 * Fills defaults and checks the gates once.
 *
 * @throws {@link EvaluationError} `EVAL_INVALID_OPTIONS` naming the bad field.
 */
export function compileVerdictOptions(options: VerdictOptions = {}): CompiledVerdictOptions {
  const compiled = { ...DEFAULT_VERDICT_OPTIONS, ...withoutUndefined(options) };
  if (!Number.isSafeInteger(compiled.minSamples) || compiled.minSamples < 0) {
    throw invalidOption('minSamples', 'a non-negative integer', compiled.minSamples);
  }
  if (!Number.isFinite(compiled.maxErrorRateIncrease) || compiled.maxErrorRateIncrease < 0 || compiled.maxErrorRateIncrease > 1) {
    throw invalidOption('maxErrorRateIncrease', 'a fraction in [0, 1]', compiled.maxErrorRateIncrease);
  }
  if (!Number.isFinite(compiled.maxP99E2eRatio) || compiled.maxP99E2eRatio <= 0) {
    throw invalidOption('maxP99E2eRatio', 'a number > 0', compiled.maxP99E2eRatio);
  }
  if (!(compiled.minJudgeWinRate >= 0 && compiled.minJudgeWinRate <= 1)) {
    throw invalidOption('minJudgeWinRate', 'a number from 0 to 1', compiled.minJudgeWinRate);
  }
  return Object.freeze(compiled);
}

/**
 * The verdict of one arm, with a human-readable reason, numbers included, for every decision.
 *
 * `inconclusive` first when the arm's conservation does not balance or it has fewer than
 * `minSamples` evaluated pairs. Otherwise each gate reads an interval, not a point:
 *
 * - error rate: the Newcombe 95% interval of (candidate rate − stable rate). `fail` when its
 *   lower end exceeds `maxErrorRateIncrease` (the increase is established), a pass when its
 *   upper end is at or below it (an increase beyond the gate is ruled out), `inconclusive` when
 *   it straddles the gate (too few requests to tell).
 * - p99 E2E: the paired bootstrap 95% interval of candidate p99 / stable p99
 *   (`deltas.e2eMs.p99Ratio`). `fail` when the whole interval is above `maxP99E2eRatio`,
 *   `inconclusive` when it straddles the gate, a pass when it lies at or below it. Below
 *   {@link P99_INTERVAL_MIN_SAMPLES} (368) pairs there is no interval ("too few samples above p99
 *   for an interval"), so the gate is inconclusive whatever the point estimate says.
 *
 * A gate that cannot be checked (no data, no interval) makes the verdict `inconclusive`;
 * any failed gate makes it `fail`; `pass` needs every gate passed.
 */
export function decideVerdict(figures: ArmFigures, balanced: boolean, options: CompiledVerdictOptions): Verdict {
  const preconditions: string[] = [];
  if (!balanced) {
    preconditions.push('conservation does not balance for this arm (see conservation notes), so the evaluated pairs may be a biased sample');
  }
  if (figures.counts.records < options.minSamples) {
    preconditions.push(`only ${figures.counts.records} evaluated pair(s); at least ${options.minSamples} are needed`);
  }
  if (preconditions.length > 0) return { status: VerdictStatus.inconclusive, reasons: preconditions };

  const gates = [
    errorRateGate(figures, options),
    p99E2eGate(figures, options),
    ...(figures.judge.n > 0 ? [judgeGate(figures, options)] : []),
    ...(figures.noise === null ? [] : [noiseGate(figures.noise)]),
  ];
  const reasons = (outcome: GateOutcome) => gates.filter((gate) => gate.outcome === outcome).map((gate) => gate.reason);
  const failed = reasons('fail');
  const open = reasons('open');
  const passed = reasons('pass');
  if (failed.length > 0) return { status: VerdictStatus.fail, reasons: [...failed, ...open, ...passed] };
  if (open.length > 0) return { status: VerdictStatus.inconclusive, reasons: [...open, ...passed] };
  return { status: VerdictStatus.pass, reasons: passed };
}

/** `open`: the gate could not be checked, or its interval straddles it. */
type GateOutcome = 'pass' | 'fail' | 'open';

interface Gate {
  outcome: GateOutcome;
  reason: string;
}

function noiseGate(noise: Record<string, unknown>): Gate {
  const metrics = (noise.metrics ?? []) as Array<{ metric: string; candidateRate: number; controlRate: number; regression: boolean }>;
  const describe = (m: (typeof metrics)[number]) => `${m.metric} ${formatPercent(m.candidateRate)} vs control ${formatPercent(m.controlRate)}`;
  const regressions = metrics.filter((m) => m.regression);
  if (regressions.length > 0) {
    return { outcome: 'fail', reason: `disagrees with stable beyond the model's own noise (control arm ${String(noise.controlArm)}): ${regressions.map(describe).join(', ')}` };
  }
  return { outcome: 'pass', reason: `no disagreement above the noise floor of control arm ${String(noise.controlArm)}${metrics.length > 0 ? ` (${metrics.map(describe).join(', ')})` : ''}` };
}

function judgeGate(figures: ArmFigures, options: CompiledVerdictOptions): Gate {
  const { winRate, ci95, n, inconsistent } = figures.judge;
  if (winRate === null || ci95 === null) return { outcome: 'open', reason: 'the judge gave no usable verdict' };
  const text = `judge win rate ${formatPercent(winRate)} over ${n} pairs (95% CI ${formatPercent(ci95.low)} to ${formatPercent(ci95.high)}; ${inconsistent} inconsistent)`;
  const gate = formatPercent(options.minJudgeWinRate);
  if (ci95.low + EPSILON >= options.minJudgeWinRate) return { outcome: 'pass', reason: `${text}; the lower end reaches the ${gate} gate` };
  if (ci95.high + EPSILON < options.minJudgeWinRate) return { outcome: 'fail', reason: `${text}; even the upper end is below the ${gate} gate` };
  return { outcome: 'open', reason: `${text} straddles the ${gate} gate` };
}

function errorRateGate(figures: ArmFigures, options: CompiledVerdictOptions): Gate {
  const { candidate, stable, difference } = figures.errors;
  if (candidate.rate === null || stable.rate === null || difference.value === null || difference.ci95 === null) {
    return { outcome: 'open', reason: 'error rates are unknown, so the error-rate gate cannot be checked' };
  }
  const gate = formatPp(options.maxErrorRateIncrease);
  const text =
    `candidate error rate ${formatPercent(candidate.rate, 2)} (${candidate.n}/${candidate.total}) vs stable ` +
    `${formatPercent(stable.rate, 2)} (${stable.n}/${stable.total}): ${formatPp(difference.value)}, ` +
    `95% CI ${formatPp(difference.ci95.low)} to ${formatPp(difference.ci95.high)}`;
  if (difference.ci95.low > options.maxErrorRateIncrease + EPSILON) {
    return { outcome: 'fail', reason: `${text}; even the lower end exceeds the ${gate} gate` };
  }
  if (difference.ci95.high > options.maxErrorRateIncrease + EPSILON) {
    return { outcome: 'open', reason: `${text} straddles the ${gate} gate: too few requests to rule out an increase beyond it` };
  }
  return { outcome: 'pass', reason: `${text}; the upper end is within the ${gate} gate` };
}

function p99E2eGate(figures: ArmFigures, options: CompiledVerdictOptions): Gate {
  const stableP99 = figures.latency.e2eMs.stable.p99;
  const candidateP99 = figures.latency.e2eMs.candidate.p99;
  const { value: ratio, ci95 } = figures.deltas.e2eMs.p99Ratio;
  if (stableP99 === null || candidateP99 === null) {
    return { outcome: 'open', reason: 'no pair where both sides answered ok, so the p99 E2E gate cannot be checked' };
  }
  const gate = formatRatio(options.maxP99E2eRatio);
  const text = `candidate p99 E2E ${formatMs(candidateP99)} is ${formatRatio(ratio)} stable's ${formatMs(stableP99)}`;
  if (ratio !== null && ci95 === null && figures.deltas.e2eMs.n < P99_INTERVAL_MIN_SAMPLES) {
    return { outcome: 'open', reason: `${text} over ${figures.deltas.e2eMs.n} pairs, but there are ${TOO_FEW_FOR_P99_INTERVAL}, so the ${gate} gate cannot be checked` };
  }
  if (ratio === null || ci95 === null) {
    return {
      outcome: 'open',
      reason: `${text}, but the ratio has no interval (fewer than 2 pairs, or a stable latency of 0 ms), so the ${gate} gate cannot be checked`,
    };
  }
  const interval = `95% CI ${formatRatio(ci95.low)} to ${formatRatio(ci95.high)}`;
  if (ci95.low > options.maxP99E2eRatio + EPSILON) {
    return { outcome: 'fail', reason: `${text} (${interval}), above the ${gate} gate across the whole interval` };
  }
  if (ci95.high > options.maxP99E2eRatio + EPSILON) {
    return { outcome: 'open', reason: `${text}, but the ${interval} straddles the ${gate} gate` };
  }
  return { outcome: 'pass', reason: `${text} (${interval}), within the ${gate} gate` };
}

function invalidOption(field: string, expected: string, got: unknown): EvaluationError {
  return new EvaluationError(EvaluationErrorCode.invalidOptions, `report options: ${field} must be ${expected} (got ${String(got)})`);
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}
