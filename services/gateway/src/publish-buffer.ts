import type { Message, Producer } from 'kafkajs';
import { chunkByBytes, type Logger } from '@shadow-replay/platform';

export interface BufferedMessage {
  topic: string;
  message: Message & { value: Buffer };
}

export interface PublishBufferOptions {
  producer: Producer;
  log: Logger;
  /** @defaultValue 10000 */
  maxEvents: number;
  /** @defaultValue 64 MiB */
  maxBytes: number;
  /** Messages sent per batch. @defaultValue 500 */
  batchSize?: number;
  /** Runs once after the producer connects and before the first send (topic creation). */
  prepare?: (() => Promise<void>) | undefined;
  onDropped: (count: number, reason: 'buffer_full' | 'send_failed' | 'shutdown') => void;
  onSent: (count: number) => void;
}

/**
 * The gateway's only link to Kafka: a bounded buffer drained by one batching loop. `offer`
 * never waits; when the buffer is full the events are dropped and counted, so the live
 * path never feels Kafka.
 */
export class PublishBuffer {
  readonly #options: Required<Omit<PublishBufferOptions, 'prepare'>> & Pick<PublishBufferOptions, 'prepare'>;
  readonly #queue: BufferedMessage[] = [];
  #bytes = 0;
  #connected = false;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: PublishBufferOptions) {
    this.#options = { batchSize: 500, ...options };
  }

  get depth(): number {
    return this.#queue.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Adds messages that belong together (request + response); all or none are buffered. */
  offer(messages: BufferedMessage[]): boolean {
    const size = messages.reduce((sum, entry) => sum + entry.message.value.length, 0);
    if (this.#stopped || this.#queue.length + messages.length > this.#options.maxEvents || this.#bytes + size > this.#options.maxBytes) {
      this.#options.onDropped(messages.length, this.#stopped ? 'shutdown' : 'buffer_full');
      return false;
    }
    this.#queue.push(...messages);
    this.#bytes += size;
    this.#wake?.();
    return true;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Stops taking events and flushes what is buffered until the deadline; the rest is dropped
   * and counted. Returns by the deadline even when Kafka is unreachable.
   */
  async close(deadlineMs: number): Promise<void> {
    this.#stopped = true;
    const deadline = Date.now() + deadlineMs;
    while (this.#queue.length > 0 && this.#connected && Date.now() < deadline) {
      this.#wake?.();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.#closing = true;
    this.#wake?.();
    const loop = this.#loop ?? Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      loop.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    if (this.#queue.length > 0) {
      this.#options.log.warn({ dropped: this.#queue.length }, 'shutdown dropped buffered events');
      this.#options.onDropped(this.#queue.length, 'shutdown');
      this.#queue.length = 0;
      this.#bytes = 0;
    }
    // A loop still stuck connecting or sending disconnects the producer when it gives up.
    const disconnect = () => this.#options.producer.disconnect().catch(() => undefined);
    if (finished) await disconnect();
    else void loop.then(disconnect);
  }

  #closing = false;
  #prepared = false;

  async #run(): Promise<void> {
    while (!this.#closing) {
      if (!this.#connected) {
        try {
          await this.#options.producer.connect();
          this.#connected = true;
          this.#options.log.info({}, 'kafka producer connected');
        } catch (error) {
          this.#options.log.warn({ err: error }, 'kafka producer cannot connect; events are buffered, then dropped when full');
          await this.#sleep(1_000);
          continue;
        }
      }
      if (!this.#prepared && this.#options.prepare !== undefined) {
        try {
          await this.#options.prepare();
          this.#prepared = true;
        } catch (error) {
          this.#options.log.warn({ err: error }, 'kafka topics could not be prepared; retrying');
          await this.#sleep(1_000);
          continue;
        }
      }
      if (this.#queue.length === 0) {
        await this.#sleep(1_000);
        continue;
      }
      const batch = this.#queue.splice(0, this.#options.batchSize);
      const size = batch.reduce((sum, entry) => sum + entry.message.value.length, 0);
      this.#bytes -= size;
      // In runs of at most PRODUCE_CHUNK_BYTES: the broker refuses a partition's record batch over
      // its message.max.bytes whole, and one refused run should not take the others with it.
      for (const chunk of chunkByBytes(batch, (entry) => entry.message.value.length)) {
        try {
          await this.#options.producer.sendBatch({ acks: -1, topicMessages: groupByTopic(chunk) });
          this.#options.onSent(chunk.length);
        } catch (error) {
          this.#options.log.warn({ err: error, count: chunk.length }, 'kafka publish failed; events dropped');
          this.#options.onDropped(chunk.length, 'send_failed');
        }
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

function groupByTopic(batch: BufferedMessage[]): Array<{ topic: string; messages: Message[] }> {
  const byTopic = new Map<string, Message[]>();
  for (const entry of batch) {
    const list = byTopic.get(entry.topic) ?? [];
    list.push(entry.message);
    byTopic.set(entry.topic, list);
  }
  return [...byTopic.entries()].map(([topic, messages]) => ({ topic, messages }));
}
