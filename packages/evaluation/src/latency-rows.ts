import { formatMs } from './format.js';
import type { Latency } from './report-schema.js';

/** One row group of a report's latency table: a per-request figure, both sides summarised. */
export interface LatencyRow {
  name: string;
  /** What the figure is, for a reader who does not know the abbreviation. */
  meaning: string;
  pair: NonNullable<Latency['itlP50Ms']>;
  format: (value: number | null) => string;
}

/** Output tokens per second: "85.3 tok/s". */
export function formatTokensPerSec(value: number | null): string {
  return value === null ? '—' : `${value.toFixed(1)} tok/s`;
}

/**
 * The rows of the latency table, in reading order, shared by the Markdown and HTML reports. The
 * ITL and throughput rows appear only when the report carries them (reports built before they
 * existed do not).
 */
export function latencyRows(latency: Latency): LatencyRow[] {
  const rows: LatencyRow[] = [
    { name: 'E2E', meaning: 'send to end of answer', pair: latency.e2eMs, format: formatMs },
    { name: 'TTFT', meaning: 'send to first content', pair: latency.ttftMs, format: formatMs },
    { name: 'TPOT', meaning: 'time per output token after the first', pair: latency.tpotMs, format: formatMs },
  ];
  const optional: Array<[string, string, Latency['itlP50Ms'], LatencyRow['format']]> = [
    ['ITL p50', 'each request’s median gap between content chunks', latency.itlP50Ms, formatMs],
    ['ITL p99', 'each request’s p99 gap between content chunks', latency.itlP99Ms, formatMs],
    ['ITL max', 'each request’s longest gap between content chunks', latency.itlMaxMs, formatMs],
    ['output tokens/s', 'each request’s completion tokens / generation time (higher is faster)', latency.outputTokensPerSec, formatTokensPerSec],
  ];
  for (const [name, meaning, pair, format] of optional) {
    if (pair !== undefined) rows.push({ name, meaning, pair, format });
  }
  return rows;
}
