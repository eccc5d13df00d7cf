/** Names of the topics the pipeline reads and writes. All are configurable. */
export interface TopicNames {
  /** RequestEvents published by the gateway. @defaultValue `shadow.requests` */
  requests: string;
  /** Stable ResponseEvents published by the gateway. @defaultValue `shadow.responses.stable` */
  stableResponses: string;
  /** Candidate ResponseEvents published by replay. @defaultValue `shadow.responses.candidate` */
  candidateResponses: string;
  /** EvaluationRecords published by the evaluator. @defaultValue `shadow.evaluations` */
  evaluations: string;
  /** Dead letters from every stage. @defaultValue `shadow.dlq` */
  deadLetter: string;
}

export const DEFAULT_TOPICS: Readonly<TopicNames> = Object.freeze({
  requests: 'shadow.requests',
  stableResponses: 'shadow.responses.stable',
  candidateResponses: 'shadow.responses.candidate',
  evaluations: 'shadow.evaluations',
  deadLetter: 'shadow.dlq',
});

/** BullMQ queue that carries one job per joined pair. */
export const DEFAULT_EVAL_QUEUE = 'shadow-eval';

/** Prefix of every Redis key the pipeline writes (join state, outcome counters, BullMQ). */
export const DEFAULT_KEY_PREFIX = 'shadow';

/**
 * BullMQ's key prefix for the evaluation queue: `{<keyPrefix>:bull}`. BullMQ's scripts touch
 * several keys of a queue at once, so on a Redis Cluster they must share a slot; the braces make
 * the whole prefix the keys' hash tag (BullMQ's "Redis Cluster" pattern).
 */
export function evalQueuePrefix(keyPrefix: string): string {
  return `{${keyPrefix}:bull}`;
}

/** The arm name of the live model's answers. */
export const STABLE_ARM = 'stable';
