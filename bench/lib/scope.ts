/**
 * Unique names for one benchmark run (topics, Redis key prefix, queue, client id) and their
 * removal afterwards, like the tests' `testScope`: runs never see each other's data and leave
 * nothing behind.
 */
import { randomUUID } from 'node:crypto';
import { createKafka, silentLogger } from '@shadow-replay/platform';
import type { TopicsConfig } from '@shadow-replay/contracts';
import type { Redis } from 'ioredis';

export interface BenchScope {
  id: string;
  topics: TopicsConfig;
  keyPrefix: string;
  evalQueue: string;
}

export function benchScope(kind: string): BenchScope {
  const id = `bench-${kind}-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}`;
  return {
    id,
    topics: {
      requests: `${id}.requests`,
      stableResponses: `${id}.responses.stable`,
      candidateResponses: `${id}.responses.candidate`,
      evaluations: `${id}.evaluations`,
      deadLetter: `${id}.dlq`,
    },
    keyPrefix: `shadow-bench:${id}`,
    evalQueue: `eval-${id}`,
  };
}

export interface CleanupReport {
  topicsDeleted: number;
  groupsDeleted: number;
  redisKeysDeleted: number;
  /** What could not be removed, as messages; empty when everything went. */
  problems: string[];
}

interface FailedGroup {
  groupId: string;
  errorCode: number;
  error?: { type?: string };
}

/** kafkajs rejects the whole DeleteGroups call when one group fails; the failed groups ride on the error. */
function failedGroups(error: unknown): FailedGroup[] {
  if (typeof error === 'object' && error !== null && 'groups' in error && Array.isArray(error.groups)) return error.groups as FailedGroup[];
  throw error;
}

/**
 * Deletes every consumer group whose id contains the scope id (the services derive group ids
 * from the client id or the experiment id, both the scope id), every topic whose name starts
 * with `<scope id>.` and every Redis key under the scope's prefix. Call it after the consumers
 * left their groups.
 */
export async function cleanupScope(scope: BenchScope, options: { kafkaBrokers: string[]; redis: Redis }): Promise<CleanupReport> {
  const report: CleanupReport = { topicsDeleted: 0, groupsDeleted: 0, redisKeysDeleted: 0, problems: [] };
  const admin = createKafka({ brokers: options.kafkaBrokers, clientId: `${scope.id}-cleanup`, log: silentLogger() }).admin();
  try {
    await admin.connect();
    // Groups first: once their topics are gone the broker may drop an empty group on its own,
    // and deleting it then fails with GROUP_ID_NOT_FOUND.
    const myGroups = (await admin.listGroups()).groups.map((group) => group.groupId).filter((groupId) => groupId.includes(scope.id));
    if (myGroups.length > 0) {
      const failed = await admin.deleteGroups(myGroups).then(() => [], failedGroups);
      const problems = failed.filter((group) => group.error?.type !== 'GROUP_ID_NOT_FOUND');
      report.groupsDeleted = myGroups.length - problems.length;
      for (const group of problems) report.problems.push(`kafka: group ${group.groupId}: ${group.error?.type ?? `error code ${group.errorCode}`}`);
    }
    // Every topic named after the scope, including any the benchmark created besides `topics`.
    const mine = (await admin.listTopics()).filter((topic) => topic.startsWith(`${scope.id}.`));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
    report.topicsDeleted = mine.length;
  } catch (error) {
    report.problems.push(`kafka: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  try {
    // The evaluation queue's BullMQ keys start with their hash tag: `{<keyPrefix>:bull}`.
    for (const pattern of [`${scope.keyPrefix}:*`, `{${scope.keyPrefix}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await options.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) report.redisKeysDeleted += await options.redis.del(...keys);
      } while (cursor !== '0');
    }
  } catch (error) {
    report.problems.push(`redis: ${error instanceof Error ? error.message : String(error)}`);
  }
  return report;
}
