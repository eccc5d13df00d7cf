import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EvaluationRecordSchema, decodeEvent, evaluationKey, type EvaluationRecord, type TopicsConfig } from '@shadow-replay/contracts';
import { buildReport, renderHtml, renderMarkdown, type Report, type NoiseOptions, type VerdictOptions } from '@shadow-replay/evaluation';
import { OUTCOME_BUCKET_MS, OutcomeStore, createKafka, createRedis, outcomeBucket, readTopicToEnd, type Logger } from '@shadow-replay/platform';
import type { Addresses } from '@shadow-replay/contracts';

export interface ReportRequest {
  experimentId: string;
  /**
   * A window of request times (ms since the epoch): the report then holds the requests that
   * occurred in [from, to), widened to whole minutes, in both its records and its counters.
   * Either end may be left open.
   */
  from?: number | undefined;
  to?: number | undefined;
  topics: TopicsConfig;
  keyPrefix: string;
  /** Verdict gates; the experiment's `verdict` section. */
  gates?: (VerdictOptions & { noise?: NoiseOptions | undefined }) | undefined;
  /** The experiment's control arm, if it has one. */
  controlArm?: string | undefined;
  addresses: Addresses;
  log: Logger;
}

/** A report and the evaluation records it was built from (each key once). */
export interface ExperimentReport {
  report: Report;
  records: EvaluationRecord[];
}

/**
 * Reads the experiment's evaluation records (each key once, the latest evaluation wins) and
 * its outcome counters, and builds the report of DESIGN §5.
 *
 * With a window (`from` and/or `to`), both sides are selected by the time the request occurred:
 * the records by `provenance.requestOccurredAt`, the counters by summing the outcome store's
 * per-minute counters, which are keyed by the same time. The window is widened to whole minutes
 * (the counters' resolution), so a drained window balances exactly like a whole experiment.
 */
export async function buildExperimentReport(request: ReportRequest): Promise<Report> {
  return (await loadExperimentReport(request)).report;
}

/** As {@link buildExperimentReport}, keeping the records for the pairs export (`--pairs`). */
export async function loadExperimentReport(request: ReportRequest): Promise<ExperimentReport> {
  const kafka = createKafka({ brokers: request.addresses.kafkaBrokers, clientId: 'shadow-replay-report', log: request.log });
  const window = request.from === undefined && request.to === undefined ? undefined : minuteWindow(request.from, request.to);
  const latest = new Map<string, EvaluationRecord>();
  let undecodable = 0;
  let firstUnreadable: string | undefined;
  let untimed = 0;
  await readTopicToEnd(kafka, request.topics.evaluations, (record) => {
    const decoded = decodeEvent(EvaluationRecordSchema, record.value);
    if (!decoded.ok) {
      undecodable++;
      firstUnreadable ??= `${record.partition}/${record.offset}: ${decoded.reason}`;
      return;
    }
    const value = decoded.value;
    if (value.experimentId !== request.experimentId) return;
    if (window !== undefined) {
      const occurredAt = value.provenance.requestOccurredAt;
      if (occurredAt === undefined) {
        untimed++;
        return;
      }
      if (occurredAt < window.from || occurredAt >= window.to) return;
    }
    const key = evaluationKey(value.experimentId, value.requestId, value.arm);
    const previous = latest.get(key);
    if (previous === undefined || previous.evaluatedAt <= value.evaluatedAt) latest.set(key, value);
  });
  if (undecodable > 0) request.log.warn({ undecodable, first: firstUnreadable }, 'evaluation records that could not be read were skipped');
  const redis = createRedis(request.addresses.redisUrl, 'shadow-report');
  try {
    const store = new OutcomeStore({ redis, keyPrefix: request.keyPrefix });
    const outcomes = window === undefined ? await store.allCounts(request.experimentId) : await store.windowCounts(request.experimentId, window.from, window.to);
    // Why requests were shed is counted for the whole experiment, not per minute: a window's report leaves it out.
    const outcomeReasons = window === undefined ? Object.fromEntries(await Promise.all(Object.keys(outcomes).map(async (arm) => [arm, await store.reasons(request.experimentId, arm)] as const))) : undefined;
    const records = [...latest.values()];
    // A loop, not Math.min(...times): spreading hundreds of thousands of arguments overflows the stack.
    let first = Infinity;
    let last = -Infinity;
    for (const record of records) {
      first = Math.min(first, record.evaluatedAt);
      last = Math.max(last, record.evaluatedAt);
    }
    const notes =
      window === undefined
        ? []
        : [
            `window: requests that occurred in [${new Date(window.from).toISOString()}, ${new Date(window.to).toISOString()}), whole minutes (the outcome counters' resolution)` +
              (untimed > 0 ? `; ${untimed} evaluation record(s) without a request time (written before it was recorded) left out` : ''),
          ];
    if (undecodable > 0) {
      notes.push(`${undecodable} record(s) on ${request.topics.evaluations} could not be read as evaluation records and were skipped (of any experiment; the first at ${firstUnreadable ?? '?'})`);
    }
    const report = buildReport(
      {
        experimentId: request.experimentId,
        window: window ?? (records.length > 0 ? { from: first, to: last } : { from: Date.now(), to: Date.now() }),
        generatedAt: Date.now(),
        records,
        outcomes,
        notes,
        outcomeReasons,
      },
      { ...request.gates, controlArm: request.controlArm },
    );
    return { report, records };
  } finally {
    await redis.quit();
  }
}

/** [from, to) widened outward to minute boundaries; an open end is the epoch or the next minute from now. */
export function minuteWindow(from: number | undefined, to: number | undefined): { from: number; to: number } {
  const start = outcomeBucket(from ?? 0);
  const end = to ?? Date.now();
  const stop = outcomeBucket(end) === end ? end : outcomeBucket(end) + OUTCOME_BUCKET_MS;
  if (stop < start) throw new Error(`report: --to (${new Date(end).toISOString()}) is before --from (${new Date(start).toISOString()})`);
  return { from: start, to: stop };
}

export const ReportFormat = { json: 'json', md: 'md', html: 'html' } as const;
export type ReportFormat = (typeof ReportFormat)[keyof typeof ReportFormat];

export function renderReport(report: Report, format: ReportFormat): string {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  if (format === 'md') return renderMarkdown(report);
  return renderHtml(report);
}

export async function writeOut(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, text);
}
