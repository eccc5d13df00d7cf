/**
 * The rate a simulated candidate really received, from its per-second arrival counts
 * (`SimStats.arrivals`, wall-clock seconds): the achieved rate over a steady window and the
 * busiest and quietest single seconds, each as a share of the target.
 */
import type { SimArrivalSecond } from '@shadow-replay/sim';

export interface RateWindow {
  /** Unix second of the first and last second counted (both inclusive); null when none is. */
  fromSecond: number | null;
  toSecond: number | null;
  /** Whole seconds counted. */
  seconds: number;
  calls: number;
  /** calls ÷ seconds. */
  achievedRps: number | null;
  /** achievedRps ÷ target × 100. */
  achievedPct: number | null;
  maxSecond: number | null;
  minSecond: number | null;
  maxPct: number | null;
  minPct: number | null;
  /** Seconds without a single arrival: a stall (Kafka restarting, a rebalance) rather than pacing. */
  emptySeconds: number;
  /** Arrivals of each counted second, in order. */
  perSecond: number[];
}

/**
 * Counts the seconds in `[fromSecond, toSecond)`, dropping `trim` seconds at each end (the
 * first and last seconds of a run are partial: the run starts and stops inside them).
 * Seconds the snapshot does not hold count as empty, so a too-short stats window shows up
 * as a gap instead of a flattering figure.
 */
export function rateWindow(arrivals: readonly SimArrivalSecond[], range: { fromSecond: number; toSecond: number; trim: number }, targetRps: number | null): RateWindow {
  const bySecond = new Map(arrivals.map((entry) => [entry.second, entry.count]));
  const first = range.fromSecond + range.trim;
  const last = range.toSecond - 1 - range.trim;
  const perSecond: number[] = [];
  for (let second = first; second <= last; second++) perSecond.push(bySecond.get(second) ?? 0);
  const calls = perSecond.reduce((sum, count) => sum + count, 0);
  const pct = (value: number | null) => (value === null || targetRps === null ? null : (value / targetRps) * 100);
  const achievedRps = perSecond.length === 0 ? null : calls / perSecond.length;
  const maxSecond = perSecond.length === 0 ? null : Math.max(...perSecond);
  const minSecond = perSecond.length === 0 ? null : Math.min(...perSecond);
  return {
    fromSecond: perSecond.length === 0 ? null : first,
    toSecond: perSecond.length === 0 ? null : last,
    seconds: perSecond.length,
    calls,
    achievedRps,
    achievedPct: pct(achievedRps),
    maxSecond,
    minSecond,
    maxPct: pct(maxSecond),
    minPct: pct(minSecond),
    emptySeconds: perSecond.filter((count) => count === 0).length,
    perSecond,
  };
}

/** The counts of `[fromSecond, toSecond)` untrimmed, for the JSON: the whole story of a run. */
export function arrivalSeries(arrivals: readonly SimArrivalSecond[], fromSecond: number, toSecond: number): Array<{ second: number; count: number }> {
  const bySecond = new Map(arrivals.map((entry) => [entry.second, entry.count]));
  const series: Array<{ second: number; count: number }> = [];
  for (let second = fromSecond; second < toSecond; second++) series.push({ second, count: bySecond.get(second) ?? 0 });
  return series;
}
