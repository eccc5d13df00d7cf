import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readTopicToEnd } from '@shadow-replay/platform';
import { testScope, uniqueName } from './support/harness.js';

describe('reading a topic to its end', () => {
  it('finishes when the partition ends in transaction markers and aborted records, and returns only committed records', async (t) => {
    const scope = testScope(t, () => ({}));
    const topic = scope.config.kafka.topics.evaluations;
    const admin = scope.kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = scope.kafka.producer({ transactionalId: uniqueName('tx'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    t.after(() => producer.disconnect());
    const write = async (values: string[], commit: boolean, partition = 0) => {
      const transaction = await producer.transaction();
      await transaction.send({ topic, messages: values.map((value) => ({ key: value, value, partition })) });
      await (commit ? transaction.commit() : transaction.abort());
    };
    await write(['a1', 'a2'], true);
    await write(['x1'], false);
    await write(['b1'], true);
    // Partition 1 holds only an aborted transaction: every fetch of it is filtered to nothing.
    await write(['y1', 'y2'], false, 1);
    // Partition 0 ends in an aborted record and commit markers, partition 1 in an abort marker:
    // offsets a consumer never receives, so waiting to see the last offset would never end.
    const values: string[] = [];
    const count = await readTopicToEnd(scope.kafka, topic, (record) => values.push(record.value?.toString() ?? ''), { idleTimeoutMs: 30_000 });
    assert.deepEqual(values, ['a1', 'a2', 'b1']);
    assert.equal(count, 3);
  });
});
