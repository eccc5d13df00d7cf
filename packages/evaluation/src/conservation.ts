import { OUTCOMES, PENDING, type Outcome, type OutcomeState } from '@shadow-replay/contracts';
import { EvaluationError, EvaluationErrorCode } from './errors.js';
import type { ArmConservation, Conservation, OutcomeCounts } from './report-schema.js';

/**
 * The outcome counters of one arm as read from Redis. A counter that is absent counts as 0.
 * When `pending` is absent it is derived as `consumed − Σ outcomes` (never below 0).
 */
export type OutcomeCounters = Partial<Record<OutcomeState | 'consumed', number>>;

const CONSUMED = 'consumed';
const KNOWN_COUNTERS = new Set<string>([CONSUMED, PENDING, ...OUTCOMES]);

/**
 * Checks conservation (DESIGN §3) per arm. An arm balances when nothing is pending, every
 * consumed request has exactly one terminal outcome, and the report holds exactly one
 * evaluation record per `evaluated` outcome. Each failed check adds a note naming the arm.
 *
 * @param counters - outcome counters by arm.
 * @param recordsByArm - number of (deduplicated) evaluation records by arm.
 * @param arms - the arms to report, in order; an arm missing from `counters` has all-zero counters.
 * @throws {@link EvaluationError} `EVAL_INVALID_INPUT` when a counter is not a non-negative integer.
 */
export function computeConservation(
  counters: Readonly<Record<string, OutcomeCounters>>,
  recordsByArm: ReadonlyMap<string, number>,
  arms: readonly string[],
): Conservation {
  const notes: string[] = [];
  const byArm: Record<string, ArmConservation> = {};
  const totals = zeroOutcomes();
  let consumed = 0;
  let pending = 0;
  let records = 0;

  for (const arm of arms) {
    const armCounters = counters[arm] ?? {};
    for (const key of Object.keys(armCounters)) {
      if (!KNOWN_COUNTERS.has(key)) notes.push(`arm ${arm}: ignored unknown counter "${key}"; this report may predate its outcome`);
    }
    const entry = armConservation(arm, armCounters, recordsByArm.get(arm) ?? 0, notes);
    byArm[arm] = entry;
    consumed += entry.consumed;
    pending += entry.pending;
    records += entry.records;
    for (const outcome of OUTCOMES) totals[outcome] += entry.outcomes[outcome];
  }
  if (arms.length === 0) notes.push('no outcome counters and no evaluation records for this experiment');

  return {
    balanced: Object.values(byArm).every((entry) => entry.balanced),
    consumed,
    pending,
    outcomes: totals,
    byArm,
    evaluatedRecords: records,
    notes,
  };
}

function armConservation(arm: string, counters: OutcomeCounters, records: number, notes: string[]): ArmConservation {
  const outcomes = zeroOutcomes();
  let terminal = 0;
  for (const outcome of OUTCOMES) {
    outcomes[outcome] = counter(arm, counters, outcome);
    terminal += outcomes[outcome];
  }
  const consumed = counter(arm, counters, CONSUMED);
  const pending = counters[PENDING] === undefined ? Math.max(0, consumed - terminal) : counter(arm, counters, PENDING);

  let balanced = true;
  if (pending > 0) {
    balanced = false;
    notes.push(`arm ${arm}: ${pending} request(s) still pending (consumed ${consumed}, ${terminal} with a terminal outcome); the pipeline has not drained`);
  }
  const unaccounted = consumed - terminal - pending;
  if (unaccounted !== 0) {
    balanced = false;
    notes.push(
      unaccounted > 0
        ? `arm ${arm}: consumed (${consumed}) ≠ outcomes (${terminal}) + pending (${pending}); ${unaccounted} request(s) have no outcome`
        : `arm ${arm}: consumed (${consumed}) ≠ outcomes (${terminal}) + pending (${pending}); ${-unaccounted} outcome(s) more than consumed requests`,
    );
  }
  if (records !== outcomes.evaluated) {
    balanced = false;
    notes.push(
      `arm ${arm}: ${records} evaluation record(s) but the evaluated counter is ${outcomes.evaluated}` +
        (records < outcomes.evaluated ? ' (records missing from the evaluations topic or outside the window)' : ' (records without a counted outcome)'),
    );
  }
  return { consumed, outcomes, pending, records, balanced };
}

function counter(arm: string, counters: OutcomeCounters, key: Outcome | typeof PENDING | typeof CONSUMED): number {
  const value = counters[key] ?? 0;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new EvaluationError(
      EvaluationErrorCode.invalidInput,
      `report: outcomes.${arm}.${key} must be a non-negative integer (got ${String(value)})`,
    );
  }
  return value;
}

function zeroOutcomes(): OutcomeCounts {
  return Object.fromEntries(OUTCOMES.map((outcome) => [outcome, 0])) as OutcomeCounts;
}
