/**
 * Helpers for tests that talk to real Kafka and Redis. Every test gets its own topics,
 * groups, queues and key prefixes, and removes them when it ends.
 */
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { ShadowConfigSchema, type ShadowConfig } from '@shadow-replay/contracts';
import { createKafka, createRedis, readTopicToEnd, silentLogger, type ConsumedRecord } from '@shadow-replay/platform';
import type { Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';

export interface TestInfra {
  kafkaBrokers: string[];
  redisUrl: string;
  schemaRegistryUrl: string;
}

/** Addresses handed in by `npm test` (test/support/run-tests.ts). */
export function testInfra(): TestInfra {
  const { KAFKA_BROKERS, REDIS_URL, SCHEMA_REGISTRY_URL } = process.env;
  if (!KAFKA_BROKERS || !REDIS_URL || !SCHEMA_REGISTRY_URL) {
    throw new Error('KAFKA_BROKERS, REDIS_URL and SCHEMA_REGISTRY_URL are not set: run the tests with `npm test`, which finds or starts them (or `npm run infra:up` and export what it prints).');
  }
  return { kafkaBrokers: KAFKA_BROKERS.split(','), redisUrl: REDIS_URL, schemaRegistryUrl: SCHEMA_REGISTRY_URL };
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
}

export interface TestScope {
  id: string;
  kafka: Kafka;
  redis: Redis;
  config: ShadowConfig;
  env: Record<string, string>;
  read: (topic: string) => Promise<ConsumedRecord[]>;
}

/**
 * A configuration with unique topic names, Redis prefix and queue for this test, and the
 * cleanup registered on the test context: topics deleted, Redis keys removed.
 */
export function testScope(t: TestContext, overrides: (id: string) => Record<string, unknown>): TestScope {
  const infra = testInfra();
  const id = uniqueName('t');
  const topics = {
    requests: `${id}.requests`,
    stableResponses: `${id}.responses.stable`,
    candidateResponses: `${id}.responses.candidate`,
    evaluations: `${id}.evaluations`,
    deadLetter: `${id}.dlq`,
  };
  const config = ShadowConfigSchema.parse({
    kafka: { clientId: id, topics, partitions: 3 },
    redis: { keyPrefix: `shadow-test:${id}`, evalQueue: `eval-${id}` },
    replay: { listen: { port: 0 } },
    join: { listen: { port: 0 }, sweepIntervalMs: 200 },
    evaluator: { listen: { port: 0 } },
    ...overrides(id),
  });
  const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: `${id}-test`, log: silentLogger() });
  const redis = createRedis(infra.redisUrl, `${id}-test`);
  t.after(async () => {
    const admin = kafka.admin();
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const mine = Object.values(topics).filter((topic) => existing.has(topic));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
    // Consumer groups are named after the client id (`<id>-join`) or the experiment (`shadow-replay.exp-<id>`).
    const { groups } = await admin.listGroups();
    const myGroups = groups.map((group) => group.groupId).filter((groupId) => groupId.includes(id));
    if (myGroups.length > 0) await admin.deleteGroups(myGroups).catch(() => undefined);
    await admin.disconnect();
    await deleteKeys(redis, `shadow-test:${id}:*`);
    // The evaluation queue's BullMQ keys start with their hash tag: `{<keyPrefix>:bull}`.
    await deleteKeys(redis, `{shadow-test:${id}:*`);
    await redis.quit();
  });
  return {
    id,
    kafka,
    redis,
    config,
    env: { KAFKA_BROKERS: infra.kafkaBrokers.join(','), REDIS_URL: infra.redisUrl, SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl, LOG_LEVEL: 'silent' },
    read: async (topic) => {
      const records: ConsumedRecord[] = [];
      await readTopicToEnd(kafka, topic, (record) => records.push(record));
      return records;
    },
  };
}

/** Settles like `promise`, or rejects once `ms` have passed without it settling. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}
