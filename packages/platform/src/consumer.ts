import type { Consumer, EachBatchPayload, IHeaders, Kafka } from 'kafkajs';
import type { Logger } from './logger.js';

/** One Kafka record, as handed to a pipeline stage. */
export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | string | undefined>;
}

export interface PipelineConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  /** Start from the earliest offset when the group has none. @defaultValue true */
  fromBeginning?: boolean;
  /** Records of one batch processed at once. @defaultValue 16 */
  concurrency?: number;
  log: Logger;
  /**
   * Processes one record. Poison input must be handled inside (dead letter) and resolve;
   * a rejection means the infrastructure failed and the batch is retried from the last
   * committed offset, which the idempotent sinks downstream absorb.
   */
  handle: (record: ConsumedRecord) => Promise<void>;
}

/**
 * At-least-once consumption: an offset is resolved only after its record and every record
 * before it in the partition were handled, so a crash redoes work and never skips it.
 */
export class PipelineConsumer {
  readonly #options: Required<Omit<PipelineConsumerOptions, 'kafka' | 'log' | 'handle'>> & PipelineConsumerOptions;
  readonly #consumer: Consumer;
  #assigned = false;
  #closing: Promise<void> | undefined;

  constructor(options: PipelineConsumerOptions) {
    this.#options = { fromBeginning: true, concurrency: 16, ...options };
    this.#consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      maxBytesPerPartition: 1_048_576,
      // A short fetch wait keeps shutdown and the first records after idle quick.
      maxWaitTimeInMs: 1_000,
      retry: { retries: 10 },
    });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => {
      this.#assigned = true;
    });
  }

  /** True once the consumer joined its group. */
  get ready(): boolean {
    return this.#assigned;
  }

  async start(): Promise<void> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: this.#options.topics, fromBeginning: this.#options.fromBeginning });
    await this.#consumer.run({
      eachBatchAutoResolve: false,
      // Batches of different partitions run side by side; order within a partition is kept.
      partitionsConsumedConcurrently: 4,
      autoCommit: true,
      autoCommitInterval: 1_000,
      eachBatch: (payload) => this.#eachBatch(payload),
    });
  }

  /** Moves the group's position in a partition (after `start`). */
  seek(topic: string, partition: number, offset: string): void {
    this.#consumer.seek({ topic, partition, offset });
  }

  close(): Promise<void> {
    // disconnect() lets the running batch finish and commits the resolved offsets.
    this.#closing ??= this.#consumer.disconnect();
    return this.#closing;
  }

  async #eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const resolveOffset = (offset: string) => payload.resolveOffset(offset);
    const heartbeat = () => payload.heartbeat();
    const commitOffsetsIfNecessary = () => payload.commitOffsetsIfNecessary();
    const isRunning = () => payload.isRunning();
    const isStale = () => payload.isStale();
    const messages = batch.messages;
    const done = new Array<boolean>(messages.length).fill(false);
    let resolved = 0;
    let next = 0;
    let failure: unknown;
    const beat = setInterval(() => {
      heartbeat().catch(() => undefined);
    }, 2_000);
    const worker = async () => {
      while (failure === undefined && next < messages.length && isRunning() && !isStale()) {
        const index = next++;
        const message = messages[index];
        if (message === undefined) continue;
        try {
          await this.#options.handle({
            topic: batch.topic,
            partition: batch.partition,
            offset: message.offset,
            timestamp: message.timestamp,
            key: message.key ?? null,
            value: message.value ?? null,
            headers: normalizeHeaders(message.headers),
          });
        } catch (error) {
          failure ??= error;
          return;
        }
        done[index] = true;
        while (resolved < messages.length && done[resolved]) {
          const ok = messages[resolved];
          if (ok !== undefined) resolveOffset(ok.offset);
          resolved++;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.#options.concurrency, messages.length) }, worker));
    } finally {
      clearInterval(beat);
    }
    await commitOffsetsIfNecessary();
    if (failure !== undefined) {
      this.#options.log.warn({ topic: batch.topic, partition: batch.partition, err: failure }, 'batch failed; redoing from last resolved offset');
      throw failure instanceof Error ? failure : new Error('batch handler failed', { cause: failure });
    }
  }
}

/** kafkajs headers as one value per name. */
export function normalizeHeaders(headers: IHeaders | undefined): Record<string, Buffer | string | undefined> {
  const out: Record<string, Buffer | string | undefined> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    out[name] = Array.isArray(value) ? value[0] : value;
  }
  return out;
}
