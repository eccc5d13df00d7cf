import { Kafka, logLevel, type Admin, type IHeaders, type LogEntry, type Producer } from 'kafkajs';
import type { Logger } from './logger.js';

export interface KafkaOptions {
  /** Bootstrap brokers, e.g. `['127.0.0.1:9092']`. */
  brokers: string[];
  clientId: string;
  log: Logger;
}

/** A kafkajs client whose logs go through our logger (kafkajs's own INFO chatter is dropped). */
export function createKafka(options: KafkaOptions): Kafka {
  const log = options.log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 200, retries: 10, maxRetryTime: 5_000 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        if (level <= logLevel.ERROR) log.error(rest, message);
        else log.warn(rest, message);
      },
  });
}

/**
 * Creates the topics that do not exist yet; existing ones are left as they are. Several
 * services may race to create the same topic, so a failed create is checked against the
 * broker's topic list and retried before it counts as an error.
 */
export async function ensureTopics(kafka: Kafka, topics: readonly string[], partitions = 3): Promise<void> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      const existing = new Set(await admin.listTopics());
      const missing = [...new Set(topics)].filter((topic) => !existing.has(topic));
      if (missing.length === 0) break;
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
        });
      } catch (error) {
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
    // Metadata of a new topic reaches every broker connection a little later.
    await admin.fetchTopicMetadata({ topics: [...new Set(topics)] });
  } finally {
    await admin.disconnect();
  }
}

/** Producer settings for pipeline stages: wait for all in-sync replicas, keep order per key. */
export function createPipelineProducer(kafka: Kafka): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 5 });
}

/**
 * Bytes of messages sent in one produce request. kafkajs writes each partition's messages of a
 * request as one record batch, and the broker refuses a batch over its `message.max.bytes`
 * (1 MiB by default) whole: many mid-sized messages sent at once would be refused together,
 * and redone and refused again.
 */
export const PRODUCE_CHUNK_BYTES = 512 * 1024;

/**
 * Splits items into runs of at most `maxBytes` as measured by `size`, in order; an item larger
 * than `maxBytes` is a run of its own.
 */
export function chunkByBytes<T>(items: readonly T[], size: (item: T) => number, maxBytes = PRODUCE_CHUNK_BYTES): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const itemBytes = size(item);
    if (current.length > 0 && bytes + itemBytes > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += itemBytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Key and value bytes of a message (headers are small and left out). */
export function messageBytes(message: { key?: Buffer | string | null; value: Buffer | string | null }): number {
  const length = (part: Buffer | string | null | undefined) => (part === null || part === undefined ? 0 : typeof part === 'string' ? Buffer.byteLength(part) : part.length);
  return length(message.key) + length(message.value);
}

/** Reads a header value as a string, whatever form kafkajs handed it in. */
export function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

export function parseBrokers(value: string): string[] {
  return value
    .split(',')
    .map((broker) => broker.trim())
    .filter((broker) => broker.length > 0);
}
