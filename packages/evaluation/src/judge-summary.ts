import type { EvaluationRecord } from '@shadow-replay/contracts';
import { winRateInterval } from './intervals.js';
import type { ArmReport } from './report-schema.js';

/**
 * The judge's verdicts over a set of records (DESIGN §4): win rate = (wins + ties / 2) / n with a
 * score interval that knows a tie scores ½ ({@link winRateInterval}; Wilson's when there is no
 * tie), where identical answers count as ties and inconsistent verdicts (the two orders disagreed)
 * as ties too, reported apart so position bias stays visible.
 */
export function judgeSummary(records: readonly EvaluationRecord[]): ArmReport['judge'] {
  const tally: Record<string, number> = {};
  let tokens = 0;
  let calls = 0;
  let retries = 0;
  let costUsd: number | null = null;
  for (const record of records) {
    const judge = record.judge as { verdict?: unknown; tokens?: unknown; costUsd?: unknown; calls?: unknown } | null;
    if (judge === null || typeof judge.verdict !== 'string') continue;
    tally[judge.verdict] = (tally[judge.verdict] ?? 0) + 1;
    if (typeof judge.tokens === 'number') tokens += judge.tokens;
    if (Array.isArray(judge.calls)) {
      calls += judge.calls.length;
      retries += judgeRetries(judge.calls);
    }
    if (typeof judge.costUsd === 'number') costUsd = (costUsd ?? 0) + judge.costUsd;
  }
  const wins = tally.win ?? 0;
  const losses = tally.loss ?? 0;
  const ties = (tally.tie ?? 0) + (tally.auto_tie ?? 0);
  const inconsistent = tally.inconsistent ?? 0;
  const n = wins + losses + ties + inconsistent;
  const score = wins + (ties + inconsistent) / 2;
  return {
    n,
    wins,
    ties,
    losses,
    inconsistent,
    winRate: n === 0 ? null : score / n,
    ci95: n === 0 ? null : winRateInterval(wins, ties + inconsistent, n),
    parseErrors: tally.parse_error ?? 0,
    errors: tally.error ?? 0,
    notSampled: tally.not_sampled ?? 0,
    calls,
    retries,
    tokens,
    costUsd,
  };
}

/**
 * Retries behind a record's judge calls: each call says how many attempts it took (`attempts`,
 * transient failures retried); records written before that carry none and count no retry.
 */
function judgeRetries(calls: readonly unknown[]): number {
  let total = 0;
  for (const call of calls) {
    const attempts = (call as { attempts?: unknown } | null)?.attempts;
    if (typeof attempts === 'number' && Number.isSafeInteger(attempts) && attempts > 1) total += attempts - 1;
  }
  return total;
}
