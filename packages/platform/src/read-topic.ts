import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { normalizeHeaders, type ConsumedRecord } from './consumer.js';

export interface ReadTopicOptions {
  /**
   * Gives up when no batch arrived for this long (not a bound on the whole read, which may take
   * as long as the topic is large). @defaultValue 120000
   */
  idleTimeoutMs?: number;
}

/**
 * Reads a topic from the beginning to its current end (the high watermarks at the time of
 * the call) without committing anything, then stops.
 *
 * A partition is done when a fetched batch reaches its last offset, not when a record with that
 * offset is seen: offsets may have gaps a consumer never receives (transaction markers, aborted
 * or compacted records), and the last offset itself may be one of them. kafkajs's
 * `batch.lastOffset()` counts those, and a fetch that held nothing else is reported by its
 * `END_BATCH_PROCESS` event.
 */
export async function readTopicToEnd(kafka: Kafka, topic: string, onRecord: (record: ConsumedRecord) => void, options: ReadTopicOptions = {}): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(offsets.map((entry) => [entry.partition, BigInt(entry.high)]));
  } finally {
    await admin.disconnect();
  }
  const remaining = new Set([...ends.entries()].filter(([, high]) => high > 0n).map(([partition]) => partition));
  if (remaining.size === 0) return 0;
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const consumer = kafka.consumer({ groupId: `shadow-reader-${randomUUID()}`, maxBytesPerPartition: 4 * 1024 * 1024 });
  let count = 0;
  let reached: (partition: number, lastOffset: string) => void = () => undefined;
  // A fetch holding only markers or aborted records never reaches eachBatch; kafkajs reports it here.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic === topic && payload.batchSize === 0) reached(payload.partition, payload.lastOffset);
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      reached = (partition, lastOffset) => {
        if (BigInt(lastOffset) >= (ends.get(partition) ?? 0n) - 1n) remaining.delete(partition);
        if (remaining.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => reject(new Error(`reading ${topic}: no records for ${idleTimeoutMs} ms before its end (partitions left: ${[...remaining].join(', ')})`)), idleTimeoutMs);
      };
      arm();
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            arm();
            const high = ends.get(batch.partition) ?? 0n;
            for (const message of batch.messages) {
              if (BigInt(message.offset) >= high) break;
              count++;
              onRecord({ topic, partition: batch.partition, offset: message.offset, timestamp: message.timestamp, key: message.key ?? null, value: message.value ?? null, headers: normalizeHeaders(message.headers) });
            }
            reached(batch.partition, batch.lastOffset());
            await Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return count;
}
