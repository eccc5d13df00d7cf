import type { EvaluationRecord, ResponseEvent, SourceOffset } from '@shadow-replay/contracts';
import { answerExcerpts } from './answer-excerpts.js';
import { compareResponses } from './compare.js';
import { EvaluationError, EvaluationErrorCode } from './errors.js';
import { sideFigures, type Prices } from './figures.js';
import { pairOrigin } from './pair-origin.js';

/** Everything needed to evaluate one joined pair. */
export interface EvaluatePairInput {
  experimentId: string;
  requestId: string;
  /** The candidate arm; must equal `candidate.arm`. */
  arm: string;
  stable: ResponseEvent;
  candidate: ResponseEvent;
  /** Where each side was read from, for provenance. */
  sources: { stable: SourceOffset; candidate: SourceOffset };
  /** An explicit null records "no hash". @defaultValue `candidate.configHash ?? null` */
  candidateConfigHash?: string | null;
  /** Prices per side; a side without prices gets a null cost. */
  prices?: { stable?: Prices; candidate?: Prices };
  evaluatorVersion: string;
  /**
   * The published request header that names the tenant (`experiment.slices.tenantHeader`).
   * @defaultValue `x-tenant-id`
   */
  tenantHeader?: string;
  /** Evaluation time, ms since the epoch (injected so the result is deterministic). */
  now: number;
}

/**
 * Builds the EvaluationRecord of one pair: figures of both sides, paired deltas
 * (candidate − stable; the TTFT delta is null when either side has no TTFT), the comparison
 * metrics and provenance, and the request's route, model and tenant for the report's slices
 * (see {@link pairOrigin}). The judge verdict is null; the evaluator adds it. `comparison.excerpts`
 * carries the beginning of both answers for the report's worst pairs and the pairs export (see
 * {@link answerExcerpts}).
 *
 * Records are produced for every pair, errors included; the report decides which pairs enter
 * which statistic.
 *
 * @throws {@link EvaluationError} `EVAL_PAIR_MISMATCH` when the two responses do not belong to
 *   this (experimentId, requestId, arm); such a pair is poison and should be dead-lettered.
 *   `EVAL_INVALID_INPUT` when `now` is not a non-negative integer.
 */
export function evaluatePair(input: EvaluatePairInput): EvaluationRecord {
  checkPair(input);
  const { stable, candidate } = input;
  const stableFigures = sideFigures(stable, input.prices?.stable);
  const candidateFigures = sideFigures(candidate, input.prices?.candidate);
  return {
    schemaVersion: 1,
    experimentId: input.experimentId,
    requestId: input.requestId,
    arm: input.arm,
    evaluatedAt: input.now,
    stable: stableFigures,
    candidate: candidateFigures,
    deltas: {
      e2eMs: candidateFigures.e2eMs - stableFigures.e2eMs,
      ttftMs:
        candidateFigures.ttftMs === null || stableFigures.ttftMs === null
          ? null
          : candidateFigures.ttftMs - stableFigures.ttftMs,
    },
    comparison: { ...compareResponses(stable, candidate), excerpts: answerExcerpts(stable, candidate) },
    judge: null,
    ...pairOrigin(stable, candidate, input.tenantHeader),
    provenance: {
      sources: input.sources,
      candidateConfigHash: input.candidateConfigHash === undefined ? (candidate.configHash ?? null) : input.candidateConfigHash,
      judgePromptHash: null,
      evaluatorVersion: input.evaluatorVersion,
      ...requestTime(stable, candidate),
    },
  };
}

/** The request's occurredAt, from the origin replay copies onto the candidate's answer (else the stable one's). */
function requestTime(stable: ResponseEvent, candidate: ResponseEvent): { requestOccurredAt?: number } {
  const occurredAt = candidate.origin?.occurredAt ?? stable.origin?.occurredAt;
  return occurredAt === undefined ? {} : { requestOccurredAt: occurredAt };
}

function checkPair(input: EvaluatePairInput): void {
  if (!Number.isSafeInteger(input.now) || input.now < 0) {
    throw new EvaluationError(
      EvaluationErrorCode.invalidInput,
      `evaluatePair: now must be a non-negative integer of ms since the epoch (got ${String(input.now)})`,
    );
  }
  const problems: string[] = [];
  if (input.stable.requestId !== input.requestId) {
    problems.push(`stable.requestId is ${input.stable.requestId}, expected ${input.requestId}`);
  }
  if (input.candidate.requestId !== input.requestId) {
    problems.push(`candidate.requestId is ${input.candidate.requestId}, expected ${input.requestId}`);
  }
  if (input.candidate.arm !== input.arm) {
    problems.push(`candidate.arm is ${input.candidate.arm}, expected ${input.arm}`);
  }
  if (input.candidate.experimentId !== undefined && input.candidate.experimentId !== input.experimentId) {
    problems.push(`candidate.experimentId is ${input.candidate.experimentId}, expected ${input.experimentId}`);
  }
  if (problems.length > 0) {
    throw new EvaluationError(EvaluationErrorCode.pairMismatch, `pair ${input.experimentId}/${input.requestId}/${input.arm}: ${problems.join('; ')}`);
  }
}
