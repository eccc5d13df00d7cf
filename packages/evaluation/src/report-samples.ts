import type { EvaluationRecord } from '@shadow-replay/contracts';
import { readAnswerExcerpts } from './answer-excerpts.js';
import { readComparisonExtra } from './comparison-extras.js';
import { WorstPairReason, type Sample, type Samples, type WorstPair } from './report-schema.js';

/**
 * Most values kept per series in `arms[].samples`. Above it a series is thinned to the order
 * statistics at evenly spaced ranks (the minimum and maximum always kept), which keeps the shape
 * of a CDF or a histogram drawn from it while bounding the report's size.
 */
export const MAX_SAMPLE_VALUES = 2000;

/** Worst pairs listed per arm in `arms[].worstPairs`. */
export const WORST_PAIRS = 10;

/**
 * The per-request values behind the report's plots, over the pairs where both sides answered
 * ok (the same pairs as the latency summaries): each side's E2E and TTFT and the paired
 * candidate − stable deltas. Values are sorted ascending, rounded to 0.01 ms and thinned to
 * {@link MAX_SAMPLE_VALUES}; `n` is the count before thinning.
 */
export function latencySamples(paired: readonly EvaluationRecord[]): Samples {
  const values = (pick: (record: EvaluationRecord) => number | null) => sample(paired.map(pick).filter((value): value is number => value !== null));
  return {
    maxValues: MAX_SAMPLE_VALUES,
    e2eMs: { stable: values((record) => record.stable.e2eMs), candidate: values((record) => record.candidate.e2eMs) },
    ttftMs: { stable: values((record) => record.stable.ttftMs), candidate: values((record) => record.candidate.ttftMs) },
    deltaE2eMs: values((record) => record.deltas.e2eMs),
    deltaTtftMs: values((record) => record.deltas.ttftMs),
  };
}

/** Sorted, rounded and thinned; see {@link MAX_SAMPLE_VALUES}. */
export function sample(values: readonly number[], max = MAX_SAMPLE_VALUES): Sample {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  const n = sorted.length;
  const kept = n <= max ? sorted : Array.from({ length: max }, (_, i) => sorted[Math.round((i * (n - 1)) / (max - 1))]!);
  return { n, values: kept.map((value) => Math.round(value * 100) / 100) };
}

/**
 * The pairs a reviewer should read first, over the pairs where both sides answered ok: half
 * of {@link WORST_PAIRS} with the least similar answers (normalized edit similarity below 1,
 * lowest first; without a similarity, a normalized mismatch ranks last), half with the largest
 * E2E slowdown (candidate − stable > 0), each list topping up the other when it is short. Ties
 * go to the larger slowdown, then to the request id, so the choice is deterministic.
 */
export function worstPairs(paired: readonly EvaluationRecord[]): WorstPair[] {
  const similarity = (record: EvaluationRecord) => readComparisonExtra(record.comparison, 'editSimilarity') ?? null;
  const byId = (a: EvaluationRecord, b: EvaluationRecord) => (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0);
  const dissimilar = paired
    .filter((record) => {
      const value = similarity(record);
      return value === null ? !record.comparison.normalizedMatch : value < 1;
    })
    .sort((a, b) => (similarity(a) ?? 2) - (similarity(b) ?? 2) || b.deltas.e2eMs - a.deltas.e2eMs || byId(a, b));
  const slower = paired.filter((record) => record.deltas.e2eMs > 0).sort((a, b) => b.deltas.e2eMs - a.deltas.e2eMs || byId(a, b));

  const chosen = new Map<string, WorstPairReason>();
  const take = (list: readonly EvaluationRecord[], reason: WorstPairReason, limit: number) => {
    for (const record of list) {
      if (chosen.size >= limit) return;
      if (!chosen.has(record.requestId)) chosen.set(record.requestId, reason);
    }
  };
  const half = Math.ceil(WORST_PAIRS / 2);
  take(dissimilar, WorstPairReason.leastSimilar, half);
  take(slower, WorstPairReason.slowest, WORST_PAIRS);
  take(dissimilar, WorstPairReason.leastSimilar, WORST_PAIRS);

  const records = new Map(paired.map((record) => [record.requestId, record]));
  return [...chosen].map(([requestId, reason]) => {
    const record = records.get(requestId)!;
    const excerpts = readAnswerExcerpts(record.comparison);
    return {
      requestId,
      reason,
      editSimilarity: similarity(record),
      deltaE2eMs: record.deltas.e2eMs,
      deltaTtftMs: record.deltas.ttftMs,
      stableText: excerpts?.stable ?? null,
      candidateText: excerpts?.candidate ?? null,
    };
  });
}
