/** Headers every dead letter carries (DESIGN §2). */
export const DeadLetterHeader = {
  reason: 'x-dlq-reason',
  stage: 'x-dlq-stage',
  sourceTopic: 'x-dlq-source-topic',
  partition: 'x-dlq-partition',
  offset: 'x-dlq-offset',
  experiment: 'x-dlq-experiment',
  /**
   * Set when the dead letter could not carry the original value (or key and headers): the record
   * with them was over the broker's message size limit. Says what was left out; the original is
   * still at `x-dlq-source-topic` / `x-dlq-partition` / `x-dlq-offset` until retention removes it.
   */
  omitted: 'x-dlq-omitted',
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

/**
 * The same dead letter without the original value (`level` 1) or without the value, key and
 * original headers (`level` 2), for a broker that refused the whole of it as too large.
 */
export function slimDeadLetter(message: DeadLetterMessage, level: 1 | 2): DeadLetterMessage {
  const valueBytes = message.value?.length ?? 0;
  if (level === 1) {
    return { key: message.key, value: null, headers: { ...message.headers, [DeadLetterHeader.omitted]: `value (${valueBytes} bytes): over the broker's message size limit` } };
  }
  const headers: Record<string, Buffer | string> = {};
  for (const [name, value] of Object.entries(message.headers)) if (name.startsWith('x-dlq-')) headers[name] = value;
  headers[DeadLetterHeader.omitted] = `value (${valueBytes} bytes), key (${message.key?.length ?? 0} bytes) and the original headers: over the broker's message size limit`;
  return { key: null, value: null, headers };
}
