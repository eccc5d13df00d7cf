/**
 * Terminal outcomes of a request in an experiment (DESIGN §3). Every request an experiment
 * consumes ends in exactly one of these, counted per experiment and arm.
 */
export const Outcome = {
  sampledOut: 'sampled_out',
  filtered: 'filtered',
  shedLag: 'shed_lag',
  shedBudget: 'shed_budget',
  shedCircuit: 'shed_circuit',
  deadLetter: 'dead_letter',
  candidateError: 'candidate_error',
  stableMissing: 'stable_missing',
  evaluated: 'evaluated',
  evalFailed: 'eval_failed',
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export const OUTCOMES: readonly Outcome[] = Object.values(Outcome);

/** The state of a consumed request that has not reached its outcome yet. */
export const PENDING = 'pending' as const;
export type OutcomeState = Outcome | typeof PENDING;

export function isOutcome(value: string): value is Outcome {
  return (OUTCOMES as readonly string[]).includes(value);
}
