import type { EvaluationRecord } from '@shadow-replay/contracts';
import { pairedBootstrapIntervals, quantileStatistic } from './bootstrap.js';
import { EvaluationError, EvaluationErrorCode } from './errors.js';
import { errorRates } from './error-rates.js';
import { judgeSummary } from './judge-summary.js';
import { p99Estimate } from './quantile-interval.js';
import { deriveSeed } from './random.js';
import { SliceDimension, SliceKind, type ArmSlices, type Estimate, type Slice } from './report-schema.js';
import { percentile } from './stats.js';

/** Values shown per dimension before the rest are folded into `other`. */
export const DEFAULT_MAX_SLICE_VALUES = 20;

/** How to slice one arm. */
export interface SliceOptions {
  /** The arm, for the bootstrap's seed label. */
  arm: string;
  /** Slices with fewer records are marked `tooSmall` and get no bootstrap interval. */
  minSamples: number;
  /** Values shown per dimension; the others are folded into one `other` slice. */
  maxValues: number;
  /** Base seed, resamples and confidence of the bootstrap; each slice derives its own stream. */
  bootstrap: { seed: number; iterations: number; confidence: number };
  /**
   * The arm's own E2E delta over all of `records` (the report's `deltas.e2eMs`): a slice that
   * holds every record (one route for the whole arm, say) reuses it instead of bootstrapping the
   * same pairs again, so it shows the arm's figures exactly.
   */
  armE2eDelta?: { p50: Estimate; p99: Estimate };
}

const DIMENSIONS: ReadonlyArray<[SliceDimension, (record: EvaluationRecord) => string | undefined]> = [
  [SliceDimension.route, (record) => record.route],
  [SliceDimension.model, (record) => record.model],
  [SliceDimension.tenant, (record) => record.tenant],
];

/**
 * One arm's records sliced by route, requested model and tenant: per slice the count, both error
 * rates (Wilson) and their difference (Newcombe), the p50 E2E delta with a paired bootstrap
 * interval and the p99 with a distribution-free one (from 368 pairs on, as the arm's), and the
 * judge's win rate (tie-aware score interval). A slice below `minSamples` records is kept and
 * marked `tooSmall`; its bootstrap is skipped (a percentile interval from a handful of pairs says
 * nothing), its score intervals are kept because they stay honest at any n.
 *
 * `records` must be in a canonical order (the report sorts them by request id): the bootstrap
 * resamples by position. Each slice draws its own stream, seeded from the base seed and
 * `arm/dimension/value`, so adding a slice leaves the others' intervals unchanged.
 *
 * Cost: a dimension that splits the arm bootstraps every pair once across its slices, so slicing
 * costs at most three times the arm's own E2E delta interval; a slice holding the whole arm
 * reuses `armE2eDelta` and costs nothing.
 */
export function sliceArm(records: readonly EvaluationRecord[], options: SliceOptions): ArmSlices {
  checkMaxValues(options.maxValues);
  const slices = Object.fromEntries(DIMENSIONS.map(([dimension, key]) => [dimension, sliceDimension(records, dimension, key, options)])) as Record<SliceDimension, Slice[]>;
  return { minSamples: options.minSamples, maxValues: options.maxValues, ...slices };
}

function sliceDimension(records: readonly EvaluationRecord[], dimension: SliceDimension, key: (record: EvaluationRecord) => string | undefined, options: SliceOptions): Slice[] {
  // One pass, so each group keeps the records' canonical (request-id) order.
  const groups = new Map<string, EvaluationRecord[]>();
  const missing: EvaluationRecord[] = [];
  for (const record of records) {
    const value = key(record);
    if (value === undefined) missing.push(record);
    else if (groups.has(value)) groups.get(value)!.push(record);
    else groups.set(value, [record]);
  }
  const ranked = [...groups].sort(([a, listA], [b, listB]) => listB.length - listA.length || (a < b ? -1 : a > b ? 1 : 0));
  const slices = ranked
    .slice(0, options.maxValues)
    .map(([value, list]) => slice(SliceKind.value, value, 1, list, records.length, `${dimension}/value/${value}`, options));
  const folded = new Set(ranked.slice(options.maxValues).map(([value]) => value));
  if (folded.size > 0) {
    const other = records.filter((record) => {
      const value = key(record);
      return value !== undefined && folded.has(value);
    });
    slices.push(slice(SliceKind.other, null, folded.size, other, records.length, `${dimension}/other`, options));
  }
  if (missing.length > 0) slices.push(slice(SliceKind.missing, null, 0, missing, records.length, `${dimension}/missing`, options));
  return slices;
}

function slice(kind: SliceKind, value: string | null, values: number, records: readonly EvaluationRecord[], all: number, label: string, options: SliceOptions): Slice {
  const paired = records.filter((record) => record.stable.outcome === 'ok' && record.candidate.outcome === 'ok');
  const deltas = paired.map((record) => record.deltas.e2eMs);
  const n = deltas.length;
  const bootstrapped = n >= Math.max(2, options.minSamples);
  const whole = records.length === all && options.armE2eDelta !== undefined ? options.armE2eDelta : undefined;
  const p50Interval = !bootstrapped
    ? null
    : whole !== undefined
      ? whole.p50.ci95
      : pairedBootstrapIntervals(deltas, [quantileStatistic(0.5)], {
          ...options.bootstrap,
          seed: deriveSeed(options.bootstrap.seed, `${options.arm}/slice/${label}/e2eMs`),
        })[0]!;
  return {
    kind,
    value,
    values,
    records: records.length,
    tooSmall: records.length < options.minSamples,
    errors: errorRates(
      { successes: records.filter((record) => record.stable.outcome !== 'ok').length, n: records.length },
      { successes: records.filter((record) => record.candidate.outcome !== 'ok').length, n: records.length },
    ),
    e2eDelta: {
      n,
      p50: { value: n === 0 ? null : percentile(deltas, 0.5), ci95: p50Interval },
      p99: whole !== undefined ? whole.p99 : p99Estimate(deltas),
    },
    judge: judgeSummary(records),
  };
}

function checkMaxValues(maxValues: number): void {
  if (!Number.isSafeInteger(maxValues) || maxValues < 1) {
    throw new EvaluationError(EvaluationErrorCode.invalidOptions, `report options: maxSliceValues must be an integer >= 1 (got ${String(maxValues)})`);
  }
}
