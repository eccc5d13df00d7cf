import type { EvaluationRecord } from '@shadow-replay/contracts';
import { readAnswerExcerpts, type AnswerExcerpts } from './answer-excerpts.js';

/** One line of the pairs export: everything a reviewer needs to judge one pair by hand. */
export interface PairExportLine {
  experimentId: string;
  requestId: string;
  arm: string;
  /** ISO-8601. */
  evaluatedAt: string;
  stable: EvaluationRecord['stable'];
  candidate: EvaluationRecord['candidate'];
  /** candidate − stable, ms. */
  deltas: EvaluationRecord['deltas'];
  /** Every comparison metric the record carries, without the excerpts (they are `excerpts`). */
  comparison: Record<string, unknown>;
  /** The beginning of both answers (at most 2,000 code points each); null when the record has none. */
  excerpts: AnswerExcerpts | null;
  judge: EvaluationRecord['judge'];
}

/** The export line of one record. */
export function pairExportLine(record: EvaluationRecord): PairExportLine {
  const { excerpts: _excerpts, ...comparison } = record.comparison;
  return {
    experimentId: record.experimentId,
    requestId: record.requestId,
    arm: record.arm,
    evaluatedAt: new Date(record.evaluatedAt).toISOString(),
    stable: record.stable,
    candidate: record.candidate,
    deltas: record.deltas,
    comparison,
    excerpts: readAnswerExcerpts(record.comparison),
    judge: record.judge,
  };
}

/**
 * The pairs export (`shadow-replay report --pairs FILE`): JSON Lines, one {@link PairExportLine}
 * per record, ordered by arm then request id, errors included (their sides say so). The
 * records should already hold each (experiment, request, arm) once, as the report reads them.
 */
export function renderPairsJsonl(records: readonly EvaluationRecord[]): string {
  const sorted = [...records].sort((a, b) => compare(a.arm, b.arm) || compare(a.requestId, b.requestId));
  return sorted.map((record) => `${JSON.stringify(pairExportLine(record))}\n`).join('');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
