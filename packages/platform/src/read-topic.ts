import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { normalizeHeaders, type ConsumedRecord } from './consumer.js';

/**
 * Reads a topic from the beginning to its current end (the high watermarks at the time of
 * the call) without committing anything, then stops.
 */
export async function readTopicToEnd(kafka: Kafka, topic: string, onRecord: (record: ConsumedRecord) => void, options: { timeoutMs?: number } = {}): Promise<number> {
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
  const consumer = kafka.consumer({ groupId: `shadow-reader-${randomUUID()}`, maxBytesPerPartition: 4 * 1024 * 1024 });
  let count = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} did not reach its end within ${options.timeoutMs ?? 120_000} ms`)), options.timeoutMs ?? 120_000);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            const high = ends.get(partition) ?? 0n;
            if (BigInt(message.offset) < high) {
              count++;
              onRecord({ topic, partition, offset: message.offset, timestamp: message.timestamp, key: message.key ?? null, value: message.value ?? null, headers: normalizeHeaders(message.headers) });
            }
            if (BigInt(message.offset) >= high - 1n) remaining.delete(partition);
            if (remaining.size === 0) {
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
  return count;
}
