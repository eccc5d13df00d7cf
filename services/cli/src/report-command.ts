import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EvaluationRecordSchema, decodeEvent, evaluationKey, type EvaluationRecord, type TopicsConfig } from '@shadow-replay/contracts';
import { buildReport, renderHtml, renderMarkdown, type Report, type NoiseOptions, type VerdictOptions } from '@shadow-replay/evaluation';
import { OutcomeStore, createKafka, createRedis, readTopicToEnd, type Logger } from '@shadow-replay/platform';
import type { Addresses } from '@shadow-replay/contracts';

export interface ReportRequest {
  experimentId: string;
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
 */
export async function buildExperimentReport(request: ReportRequest): Promise<Report> {
  return (await loadExperimentReport(request)).report;
}

/** As {@link buildExperimentReport}, keeping the records for the pairs export (`--pairs`). */
export async function loadExperimentReport(request: ReportRequest): Promise<ExperimentReport> {
  const kafka = createKafka({ brokers: request.addresses.kafkaBrokers, clientId: 'shadow-replay-report', log: request.log });
  const latest = new Map<string, EvaluationRecord>();
  let undecodable = 0;
  await readTopicToEnd(kafka, request.topics.evaluations, (record) => {
    const decoded = decodeEvent(EvaluationRecordSchema, record.value);
    if (!decoded.ok) {
      undecodable++;
      return;
    }
    const value = decoded.value;
    if (value.experimentId !== request.experimentId) return;
    if (request.from !== undefined && value.evaluatedAt < request.from) return;
    if (request.to !== undefined && value.evaluatedAt > request.to) return;
    const key = evaluationKey(value.experimentId, value.requestId, value.arm);
    const previous = latest.get(key);
    if (previous === undefined || previous.evaluatedAt <= value.evaluatedAt) latest.set(key, value);
  });
  if (undecodable > 0) request.log.warn({ undecodable }, 'evaluation records that could not be read were skipped');
  const redis = createRedis(request.addresses.redisUrl, 'shadow-report');
  try {
    const store = new OutcomeStore({ redis, keyPrefix: request.keyPrefix });
    const outcomes = await store.allCounts(request.experimentId);
    const outcomeReasons = Object.fromEntries(await Promise.all(Object.keys(outcomes).map(async (arm) => [arm, await store.reasons(request.experimentId, arm)] as const)));
    const records = [...latest.values()];
    const times = records.map((record) => record.evaluatedAt);
    const report = buildReport(
      {
        experimentId: request.experimentId,
        window: { from: request.from ?? (times.length > 0 ? Math.min(...times) : Date.now()), to: request.to ?? (times.length > 0 ? Math.max(...times) : Date.now()) },
        generatedAt: Date.now(),
        records,
        outcomes,
        outcomeReasons,
      },
      { ...request.gates, controlArm: request.controlArm },
    );
    return { report, records };
  } finally {
    await redis.quit();
  }
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
