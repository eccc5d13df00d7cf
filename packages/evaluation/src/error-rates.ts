import { newcombeDiffInterval, wilsonInterval } from './intervals.js';
import type { ArmReport } from './report-schema.js';

/** Failed requests of one side and the requests the rate is over. */
export interface FailureCount {
  successes: number;
  n: number;
}

/**
 * Error rates of both sides with Wilson intervals, and candidate rate − stable rate with
 * Newcombe's hybrid score interval; rates and intervals are null for a side with no requests.
 */
export function errorRates(stable: FailureCount, candidate: FailureCount): ArmReport['errors'] {
  const side = ({ successes, n }: FailureCount) => ({
    n: successes,
    total: n,
    rate: n === 0 ? null : successes / n,
    ci95: n === 0 ? null : wilsonInterval(successes, n),
  });
  const both = stable.n > 0 && candidate.n > 0;
  return {
    stable: side(stable),
    candidate: side(candidate),
    difference: {
      value: both ? candidate.successes / candidate.n - stable.successes / stable.n : null,
      ci95: both ? newcombeDiffInterval(candidate, stable) : null,
    },
  };
}
