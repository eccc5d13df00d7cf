import { EvaluationError, EvaluationErrorCode } from './errors.js';
import { formatMs, formatPercent, formatPp, formatRatio } from './format.js';
import { VerdictStatus, type ArmReport, type Verdict } from './report-schema.js';

/** Gates of the per-arm verdict. */
export interface VerdictOptions {
  /** Fewer evaluated pairs than this make the verdict inconclusive. @defaultValue 30 */
  minSamples?: number;
  /**
   * Largest tolerated excess of the candidate's error rate over stable's, as a fraction
   * (0.005 = 0.5 percentage points). @defaultValue 0.005
   */
  maxErrorRateIncrease?: number;
  /** Largest tolerated ratio candidate p99 E2E / stable p99 E2E. @defaultValue 1.2 */
  maxP99E2eRatio?: number;
}

export type CompiledVerdictOptions = Readonly<Required<VerdictOptions>>;

export const DEFAULT_VERDICT_OPTIONS: CompiledVerdictOptions = Object.freeze({
  minSamples: 30,
  maxErrorRateIncrease: 0.005,
  maxP99E2eRatio: 1.2,
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
  return Object.freeze(compiled);
}

/**
 * The verdict of one arm, with a human-readable reason for every decision:
 * `inconclusive` when the arm's conservation does not balance or it has fewer than
 * `minSamples` evaluated pairs; otherwise `fail` when the candidate's error rate exceeds
 * stable's by more than `maxErrorRateIncrease` or its p99 E2E is more than `maxP99E2eRatio`
 * times stable's; `inconclusive` when a gate cannot be checked; `pass` otherwise.
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

  const failed: string[] = [];
  const passed: string[] = [];
  const unchecked: string[] = [];

  const candidateRate = figures.errors.candidate.rate;
  const stableRate = figures.errors.stable.rate;
  if (candidateRate === null || stableRate === null) {
    unchecked.push('error rates are unknown, so the error-rate gate cannot be checked');
  } else {
    const gap = candidateRate - stableRate;
    const rates = `candidate error rate ${formatPercent(candidateRate, 2)} vs stable ${formatPercent(stableRate, 2)} (${formatPp(gap)}`;
    if (gap > options.maxErrorRateIncrease + EPSILON) {
      failed.push(`${rates}, gate: at most ${formatPp(options.maxErrorRateIncrease)})`);
    } else {
      passed.push(`${rates}, within the ${formatPp(options.maxErrorRateIncrease)} gate)`);
    }
  }

  const stableP99 = figures.latency.e2eMs.stable.p99;
  const candidateP99 = figures.latency.e2eMs.candidate.p99;
  if (stableP99 === null || candidateP99 === null) {
    unchecked.push('no pair where both sides answered ok, so the p99 E2E gate cannot be checked');
  } else {
    const ratio = stableP99 === 0 ? (candidateP99 === 0 ? 1 : Number.POSITIVE_INFINITY) : candidateP99 / stableP99;
    const text = `candidate p99 E2E ${formatMs(candidateP99)} is ${formatRatio(ratio)} stable's ${formatMs(stableP99)}`;
    if (ratio > options.maxP99E2eRatio + EPSILON) {
      failed.push(`${text} (gate: at most ${formatRatio(options.maxP99E2eRatio)})`);
    } else {
      passed.push(`${text}, within the ${formatRatio(options.maxP99E2eRatio)} gate`);
    }
  }

  if (failed.length > 0) return { status: VerdictStatus.fail, reasons: [...failed, ...unchecked, ...passed] };
  if (unchecked.length > 0) return { status: VerdictStatus.inconclusive, reasons: [...unchecked, ...passed] };
  return { status: VerdictStatus.pass, reasons: passed };
}

function invalidOption(field: string, expected: string, got: unknown): EvaluationError {
  return new EvaluationError(EvaluationErrorCode.invalidOptions, `report options: ${field} must be ${expected} (got ${String(got)})`);
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}
