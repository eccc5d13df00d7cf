import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chunkByBytes, ensureTopics, messageBytes, PRODUCE_CHUNK_BYTES } from '@shadow-replay/platform';
import { testScope } from './support/harness.js';

describe('produce requests in runs of bytes', () => {
  it('splits in order, never above the limit unless one item is larger on its own', () => {
    assert.deepEqual(chunkByBytes([3, 3, 3, 5, 1, 9, 2], (n) => n, 6), [[3, 3], [3], [5, 1], [9], [2]]);
    assert.deepEqual(chunkByBytes([], (n: number) => n, 6), []);
    assert.equal(messageBytes({ key: 'ké', value: Buffer.alloc(10) }), 13);
    assert.equal(messageBytes({ key: null, value: null }), 0);
  });

  it('get through a broker that refuses the same messages sent as one request', async (t) => {
    const scope = testScope(t, () => ({}));
    const topic = `${scope.id}-chunks`;
    await ensureTopics(scope.kafka, [topic], 1);
    const producer = scope.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    t.after(() => producer.disconnect());
    // 40 answers of 40 KB: each fits, together they are one 1.6 MB record batch on the partition.
    const messages = Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(40_000, 97 + (i % 26)) }));
    await assert.rejects(producer.send({ topic, acks: -1, messages }), (error: Error & { type?: string; cause?: { type?: string } }) => /larger than the max message size/.test(error.message) || error.type === 'MESSAGE_TOO_LARGE', 'the premise: the broker refuses the batch whole');
    const chunks = chunkByBytes(messages, messageBytes);
    assert.ok(chunks.every((chunk) => chunk.reduce((sum, message) => sum + messageBytes(message), 0) <= PRODUCE_CHUNK_BYTES));
    for (const chunk of chunks) await producer.send({ topic, acks: -1, messages: chunk });
    const records = await scope.read(topic);
    assert.deepEqual(records.map((record) => record.key?.toString()), messages.map((message) => message.key), 'every message once, in order');
  });
});
