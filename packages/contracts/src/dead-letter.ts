/** Headers every dead letter carries (DESIGN §2). */
export const DeadLetterHeader = {
  reason: 'x-dlq-reason',
  stage: 'x-dlq-stage',
  sourceTopic: 'x-dlq-source-topic',
  partition: 'x-dlq-partition',
  offset: 'x-dlq-offset',
  experiment: 'x-dlq-experiment',
} as const;

export const DeadLetterStage = {
  gateway: 'gateway',
  replay: 'replay',
  join: 'join',
  evaluator: 'evaluator',
} as const;
export type DeadLetterStage = (typeof DeadLetterStage)[keyof typeof DeadLetterStage];

export interface DeadLetterSource {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | undefined>;
}

export interface DeadLetterMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | string>;
}

/**
 * Wraps a record that could not be processed: the original key and value bytes are kept
 * untouched, the original headers are kept, and the reason travels in `x-dlq-*` headers.
 */
export function deadLetterMessage(
  source: DeadLetterSource,
  reason: string,
  stage: DeadLetterStage,
  experimentId?: string,
): DeadLetterMessage {
  const headers: Record<string, Buffer | string> = {};
  for (const [name, value] of Object.entries(source.headers ?? {})) {
    if (value !== undefined && !name.startsWith('x-dlq-')) headers[name] = value;
  }
  headers[DeadLetterHeader.reason] = reason;
  headers[DeadLetterHeader.stage] = stage;
  headers[DeadLetterHeader.sourceTopic] = source.topic;
  headers[DeadLetterHeader.partition] = String(source.partition);
  headers[DeadLetterHeader.offset] = source.offset;
  if (experimentId !== undefined) headers[DeadLetterHeader.experiment] = experimentId;
  return { key: source.key, value: source.value, headers };
}
