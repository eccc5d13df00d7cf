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
