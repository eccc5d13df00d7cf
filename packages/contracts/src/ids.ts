import { createHash } from 'node:crypto';

/**
 * Deterministic BullMQ job id of a pair. BullMQ rejects custom ids that contain `:` or that
 * are integers, so the id is a prefixed digest rather than the readable key.
 */
export function pairJobId(experimentId: string, requestId: string, arm: string): string {
  const digest = createHash('sha256').update(JSON.stringify([experimentId, requestId, arm])).digest('hex');
  return `pair-${digest.slice(0, 40)}`;
}

/** Kafka key of an EvaluationRecord; a re-evaluated pair gets the same key (DESIGN §3). */
export function evaluationKey(experimentId: string, requestId: string, arm: string): string {
  return `${experimentId}/${requestId}/${arm}`;
}

/** Stable short hash of any JSON-serialisable value, for provenance (config and prompt hashes). */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/**
 * The backoff type the join stamps on every pair's job. It names no BullMQ built-in, so BullMQ
 * asks the evaluator's worker for each wait, and the evaluator's own `evaluator.backoff` (and a
 * judge's Retry-After) decide it.
 */
export const PAIR_JOB_BACKOFF = 'shadow-evaluator';
