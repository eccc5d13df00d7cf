import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PublishBuffer } from '@shadow-replay/gateway';
import { chunkByBytes, ensureTopics, messageBytes, PRODUCE_CHUNK_BYTES, silentLogger, waitFor } from '@shadow-replay/platform';
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

  it('let the gateway\'s publish buffer send a backlog of large events without dropping any', async (t) => {
    const scope = testScope(t, () => ({}));
    const topic = `${scope.id}-backlog`;
    await ensureTopics(scope.kafka, [topic], 1);
    const producer = scope.kafka.producer({ allowAutoTopicCreation: false });
    let sent = 0;
    const dropped: string[] = [];
    const buffer = new PublishBuffer({
      producer,
      log: silentLogger(),
      maxEvents: 1_000,
      maxBytes: 64 * 1024 * 1024,
      onSent: (count) => (sent += count),
      onDropped: (count, reason) => dropped.push(`${count} ${reason}`),
    });
    t.after(() => buffer.close(5_000));
    // A backlog, as after Kafka was slow: 24 events of 200 KB, one batch for the loop to send.
    for (let i = 0; i < 24; i++) assert.ok(buffer.offer([{ topic, message: { key: `e${i}`, value: Buffer.alloc(200_000, 97 + (i % 26)) } }]));
    buffer.start();
    await waitFor(() => sent + dropped.length > 0 && (sent === 24 || dropped.length > 0), { timeoutMs: 30_000, what: 'the backlog sent or dropped' });
    assert.deepEqual(dropped, [], 'nothing dropped');
    assert.equal(sent, 24);
    assert.deepEqual((await scope.read(topic)).map((record) => record.key?.toString()), Array.from({ length: 24 }, (_, i) => `e${i}`));
  });
});
