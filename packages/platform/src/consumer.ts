import { setMaxListeners } from 'node:events';
import type { Consumer, EachBatchPayload, IHeaders, Kafka } from 'kafkajs';
import type { Logger } from './logger.js';

/**
 * Thrown by a handler that gave up a record because its signal aborted (the group is
 * rebalancing or the consumer is closing): the record stays unresolved and whoever owns the
 * partition next reads it again. Not a failure.
 */
export class RecordAbandonedError extends Error {
  constructor(reason?: unknown) {
    super('record abandoned: the partition is being handed over or the consumer is closing', { cause: reason });
    this.name = 'RecordAbandonedError';
  }
}

/** Errors kafkajs raises while the group rebalances; the runner rejoins when eachBatch throws one. */
function isGroupChange(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return type === 'REBALANCE_IN_PROGRESS' || type === 'NOT_COORDINATOR_FOR_GROUP' || type === 'ILLEGAL_GENERATION' || type === 'UNKNOWN_MEMBER_ID';
}

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
  /**
   * Bytes fetched per partition at once. A stage that paces its work (replay at a few requests
   * per second) wants small batches, so a rebalance or a stop finds little taken and not done.
   * @defaultValue 1048576
   */
  maxBytesPerPartition?: number;
  log: Logger;
  /**
   * Processes one record. Poison input must be handled inside (dead letter) and resolve;
   * a rejection means the infrastructure failed and the batch is retried from the last
   * committed offset, which the idempotent sinks downstream absorb.
   *
   * `signal` aborts when the group rebalances or the consumer closes: work that has not
   * started its side effect yet (waiting for a rate slot, say) should stop and reject with
   * {@link RecordAbandonedError}; work already under way may finish.
   */
  handle: (record: ConsumedRecord, signal: AbortSignal) => Promise<void>;
  /**
   * Called when the consumer has moved past `lastOffset` in a partition: every record up to it
   * was handled (no failure, no hand-over), or held nothing to handle. Offsets are not records:
   * transaction markers, records of aborted transactions and offsets removed by compaction are
   * never handed to `handle`, so counting handled records cannot tell where a partition is.
   */
  onBatchHandled?: (position: { topic: string; partition: number; lastOffset: string }) => void;
}

/**
 * At-least-once consumption: an offset is resolved only after its record and every record
 * before it in the partition were handled, so a crash redoes work and never skips it.
 */
export class PipelineConsumer {
  readonly #options: Required<Omit<PipelineConsumerOptions, 'kafka' | 'log' | 'handle' | 'onBatchHandled'>> & PipelineConsumerOptions;
  readonly #consumer: Consumer;
  /** Aborted by close(): every batch's signal follows it. */
  readonly #closed = new AbortController();
  #assigned = false;
  #closing: Promise<void> | undefined;

  constructor(options: PipelineConsumerOptions) {
    this.#options = { fromBeginning: true, concurrency: 16, maxBytesPerPartition: 1_048_576, ...options };
    this.#consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      maxBytesPerPartition: this.#options.maxBytesPerPartition,
      // A short fetch wait keeps shutdown and the first records after idle quick.
      maxWaitTimeInMs: 1_000,
      retry: { retries: 10 },
    });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => {
      this.#assigned = true;
    });
    const { onBatchHandled } = options;
    if (onBatchHandled !== undefined) {
      // A fetch whose records were all filtered out (only markers or aborted records) never
      // reaches eachBatch: kafkajs resolves its last offset itself and reports it here.
      this.#consumer.on(this.#consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.batchSize === 0) onBatchHandled({ topic: payload.topic, partition: payload.partition, lastOffset: payload.lastOffset });
      });
    }
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
    // Work not yet started is abandoned; disconnect() lets the running calls finish and
    // commits the resolved offsets.
    this.#closed.abort(new Error('consumer closing'));
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
    // Set when a heartbeat learns the group is rebalancing: no new record is taken, waiting
    // work is abandoned, and the error is rethrown once the running calls end so kafkajs rejoins
    // within the rebalance timeout instead of being evicted with the partition still busy.
    let groupChange: unknown;
    const handover = new AbortController();
    const signal = AbortSignal.any([handover.signal, this.#closed.signal]);
    // Every record waiting in this batch listens to it.
    setMaxListeners(0, signal);
    const beat = setInterval(() => {
      heartbeat().catch((error: unknown) => {
        if (!isGroupChange(error) || groupChange !== undefined) return;
        groupChange = error;
        handover.abort(error);
        this.#options.log.info({ topic: batch.topic, partition: batch.partition, done: resolved, of: messages.length }, 'group rebalancing; handing the rest of the batch over');
      });
    }, 2_000);
    const taking = () => failure === undefined && groupChange === undefined && !signal.aborted && isRunning() && !isStale();
    const worker = async () => {
      while (taking() && next < messages.length) {
        const index = next++;
        const message = messages[index];
        if (message === undefined) continue;
        try {
          await this.#options.handle(
            {
              topic: batch.topic,
              partition: batch.partition,
              offset: message.offset,
              timestamp: message.timestamp,
              key: message.key ?? null,
              value: message.value ?? null,
              headers: normalizeHeaders(message.headers),
            },
            signal,
          );
        } catch (error) {
          // Abandoned on purpose: left unresolved, read again by the partition's next owner.
          if (error instanceof RecordAbandonedError && signal.aborted) return;
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
    try {
      // Handing the partition over: commit everything done now, not at the next interval, or
      // its next owner redoes it.
      if (groupChange !== undefined || signal.aborted) await payload.commitOffsetsIfNecessary(payload.uncommittedOffsets());
      else await commitOffsetsIfNecessary();
    } catch (error) {
      // During a rebalance the commit may be refused; the new owner redoes from the last commit.
      if (groupChange === undefined && !isGroupChange(error)) throw error;
      groupChange ??= error;
    }
    if (failure !== undefined) {
      this.#options.log.warn({ topic: batch.topic, partition: batch.partition, err: failure }, 'batch failed; redoing from last resolved offset');
      throw failure instanceof Error ? failure : new Error('batch handler failed', { cause: failure });
    }
    if (groupChange !== undefined) throw groupChange instanceof Error ? groupChange : new Error('group rebalancing', { cause: groupChange });
    // Closing or a seek can stop a batch short without an error; only a batch done to its end counts.
    // lastOffset() includes the markers and aborted records kafkajs filtered out after the last record.
    if (resolved === messages.length) this.#options.onBatchHandled?.({ topic: batch.topic, partition: batch.partition, lastOffset: batch.lastOffset() });
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
