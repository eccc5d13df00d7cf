/**
 * Filling a request topic with RequestEvents before a replay starts, counting what a topic
 * holds, and reading a topic to its end with a consumer group of the benchmark's scope (so
 * `cleanupScope` removes it).
 */
import { performance } from 'node:perf_hooks';
import { samplePrompt } from '@shadow-replay/cli';
import type { RequestEvent } from '@shadow-replay/contracts';
import type { Kafka } from 'kafkajs';

const SEND_BATCH = 1_000;

/** The n-th benchmark request: the demo's prompts, one user message, like the gateway publishes. */
export function benchRequestEvent(requestId: string, index: number, occurredAt = Date.now()): RequestEvent {
  return {
    schemaVersion: 1,
    requestId,
    occurredAt,
    route: '/v1/chat/completions',
    sampling: { rate: 1, key: null, sampled: true },
    body: { model: 'sim', messages: [{ role: 'user', content: samplePrompt(index) }] },
    headers: {},
  };
}

/** Produces `count` RequestEvents keyed by request id (`${idPrefix}-${index}`), in batches. */
export async function prefillRequests(kafka: Kafka, topic: string, options: { count: number; idPrefix: string; onProgress?: (sent: number) => void }): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let start = 0; start < options.count; start += SEND_BATCH) {
      const end = Math.min(options.count, start + SEND_BATCH);
      const messages = [];
      for (let index = start; index < end; index++) {
        const requestId = `${options.idPrefix}-${index}`;
        messages.push({ key: requestId, value: JSON.stringify(benchRequestEvent(requestId, index)) });
      }
      await producer.send({ topic, acks: -1, messages });
      options.onProgress?.(end);
    }
  } finally {
    await producer.disconnect();
  }
}

/** Records in the topic now: the sum of its partitions' high watermarks (nothing is deleted in a run). */
export async function topicRecordCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0);
  } finally {
    await admin.disconnect();
  }
}

export interface TopicRecord {
  partition: number;
  /** The record's timestamp (the producer's create time), ms epoch. */
  timestamp: number;
  value: Buffer | null;
}

export interface TopicRead {
  /** Records read (kept or not). */
  count: number;
  /** The records, unless `keep: false`. */
  records: TopicRecord[];
  /** `performance.now()` when the consumer was started (before connecting and joining its group). */
  startedAt: number;
  /** `performance.now()` when the first batch came, and when the last partition reached its end. */
  firstBatchAt: number | null;
  endAt: number | null;
}

/**
 * Reads every record up to the high watermarks at the time of the call, with the given group
 * (nothing committed). With `keep: false` the records are only counted: a kafkajs consumer
 * doing no work, the client library's own ceiling.
 */
export async function readTopicRecords(kafka: Kafka, topic: string, options: { groupId: string; timeoutMs: number; keep?: boolean }): Promise<TopicRead> {
  const startedAt = performance.now();
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, number>;
  try {
    ends = new Map((await admin.fetchTopicOffsets(topic)).map((entry) => [entry.partition, Number(entry.high)]));
  } finally {
    await admin.disconnect();
  }
  const remaining = new Set([...ends].filter(([, high]) => high > 0).map(([partition]) => partition));
  const read: TopicRead = { count: 0, records: [], startedAt, firstBatchAt: null, endAt: null };
  if (remaining.size === 0) return read;
  const consumer = kafka.consumer({ groupId: options.groupId, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} did not reach its end within ${options.timeoutMs} ms`)), options.timeoutMs);
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            read.firstBatchAt ??= performance.now();
            const high = ends.get(batch.partition) ?? 0;
            for (const message of batch.messages) {
              const offset = Number(message.offset);
              if (offset < high) {
                read.count++;
                if (options.keep !== false) read.records.push({ partition: batch.partition, timestamp: Number(message.timestamp), value: message.value ?? null });
              }
              if (offset >= high - 1) remaining.delete(batch.partition);
            }
            if (remaining.size === 0) {
              read.endAt ??= performance.now();
              clearTimeout(timer);
              resolve();
            }
            await Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return read;
}
