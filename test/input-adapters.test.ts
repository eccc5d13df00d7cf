import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { RequestEventSchema, type RequestEvent } from '@shadow-replay/contracts';
import { ensureTopics, type ConsumedRecord } from '@shadow-replay/platform';
import { InputAdapterError, InputAdapterErrorCode, createInputAdapter, parseInputAdapterConfig, type AdaptResult, type InputAdapter } from '@shadow-replay/replay';
import { registerSchema } from './support/registry.js';
import { testInfra, testScope } from './support/harness.js';

function frame(schemaId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, payload]);
}

function requestOf(result: AdaptResult | undefined) {
  assert.ok(result, 'no result for this key');
  if (!result.ok) assert.fail(`expected an event, got ${result.reason}`);
  return result.value;
}

function reasonOf(result: AdaptResult | undefined): string {
  assert.ok(result, 'no result for this key');
  assert.equal(result.ok, false, 'expected poison');
  return result.ok ? '' : result.reason;
}

/** An LLM gateway log as some company publishes it: request and response in one Avro record. */
function llmLogSchema(namespace: string) {
  return {
    type: 'record',
    name: 'LlmLog',
    namespace,
    fields: [
      { name: 'id', type: 'string' },
      { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
      { name: 'org', type: ['null', 'string'], default: null },
      {
        name: 'request',
        type: {
          type: 'record',
          name: 'Request',
          fields: [
            { name: 'model', type: 'string' },
            { name: 'messages', type: { type: 'array', items: { type: 'record', name: 'Message', fields: [{ name: 'role', type: 'string' }, { name: 'content', type: 'string' }] } } },
            {
              name: 'params',
              type: {
                type: 'record',
                name: 'Params',
                fields: [
                  { name: 'temperature', type: ['null', 'double'], default: null },
                  { name: 'max_tokens', type: ['null', 'int'], default: null },
                ],
              },
            },
          ],
        },
      },
      {
        name: 'response',
        type: {
          type: 'record',
          name: 'Response',
          fields: [
            { name: 'text', type: ['null', 'string'], default: null },
            { name: 'finish_reason', type: ['null', 'string'], default: null },
          ],
        },
      },
      { name: 'usage', type: { type: 'record', name: 'Usage', fields: [{ name: 'in', type: 'int' }, { name: 'out', type: 'int' }] } },
      { name: 'latency_ms', type: 'double' },
      { name: 'ttft_ms', type: ['null', 'double'], default: null },
      { name: 'status', type: 'int' },
    ],
  };
}

/** Our native RequestEvent described as JSON Schema, as a team might register it. */
function requestEventJsonSchema(title: string) {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title,
    type: 'object',
    required: ['schemaVersion', 'requestId', 'occurredAt', 'route', 'sampling', 'body', 'headers'],
    properties: {
      schemaVersion: { const: 1 },
      requestId: { type: 'string' },
      occurredAt: { type: 'integer' },
      route: { type: 'string' },
      sampling: { type: 'object' },
      body: { type: 'object', required: ['messages'] },
      headers: { type: 'object', additionalProperties: { type: 'string' } },
      loggedAt: { type: 'string', format: 'date-time' },
    },
  };
}

const llmLogMapping = {
  kind: 'schema-registry',
  mapping: {
    requestId: '/id',
    occurredAt: '/ts',
    tenant: '/org',
    messages: '/request/messages',
    model: '/request/model',
    params: '/request/params',
    stable: {
      content: '/response/text',
      finishReason: '/response/finish_reason',
      promptTokens: '/usage/in',
      completionTokens: '/usage/out',
      latencyMs: '/latency_ms',
      ttftMs: '/ttft_ms',
      status: '/status',
    },
  },
};

describe('input adapters on Kafka records and the schema registry', () => {
  it('decode Avro combined logs and JSON Schema events read from Kafka into the same requests as native events, and give each broken record a reason', async (t) => {
    const infra = testInfra();
    const scope = testScope(t, () => ({}));
    const topic = scope.config.kafka.topics.requests;
    await ensureTopics(scope.kafka, [topic], 1);
    // With default options the client's Ajv refuses `format: "date-time"` (strict mode); the
    // adapter turns strict mode off for the same reason, so the producer side here does too.
    const registry = new SchemaRegistry({ host: infra.schemaRegistryUrl }, { [SchemaType.JSON]: { strict: false, logger: false } });
    // Schema ids are content ids in Apicurio: a unique namespace/title keeps this test's schemas its own.
    const unique = scope.id.replace(/[^A-Za-z0-9]/g, '_');
    const avroId = await registerSchema(t, infra.schemaRegistryUrl, `${scope.id}-llm-log-value`, { type: SchemaType.AVRO, schema: JSON.stringify(llmLogSchema(`com.example.${unique}`)) });
    const jsonId = await registerSchema(t, infra.schemaRegistryUrl, `${scope.id}-request-value`, { type: SchemaType.JSON, schema: JSON.stringify(requestEventJsonSchema(`RequestEvent ${unique}`)) });
    assert.notEqual(avroId, jsonId);

    const ts = Date.UTC(2025, 0, 15, 9, 30, 0, 125);
    const messages = [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'What is the capital of Norway?' },
    ];
    const answered = {
      id: `${scope.id}-avro-1`,
      ts,
      org: 'acme',
      request: { model: 'llama-3-8b', messages, params: { temperature: 0.3, max_tokens: 128 } },
      response: { text: 'Oslo.', finish_reason: 'stop' },
      usage: { in: 24, out: 3 },
      latency_ms: 412.5,
      ttft_ms: 180,
      status: 200,
    };
    const failed = { ...answered, id: `${scope.id}-avro-2`, org: null, request: { ...answered.request, params: { temperature: null, max_tokens: null } }, response: { text: null, finish_reason: null }, usage: { in: 24, out: 0 }, ttft_ms: null, status: 503 };
    const native: RequestEvent = {
      schemaVersion: 1,
      requestId: `${scope.id}-json-1`,
      occurredAt: ts,
      route: '/v1/chat/completions',
      tenant: 'acme',
      sampling: { rate: 0.5, key: 'tenant', sampled: true },
      body: { model: 'llama-3-8b', messages, temperature: 0.3, max_tokens: 128 },
      headers: { 'user-agent': 'sdk/1.2' },
    };
    const avroAnswered = await registry.encode(avroId, answered);
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    await producer.send({
      topic,
      messages: [
        { key: 'avro-1', value: avroAnswered },
        { key: 'avro-2', value: await registry.encode(avroId, failed) },
        { key: 'json-1', value: await registry.encode(jsonId, { ...native, loggedAt: '2025-01-15T09:30:00.125Z' }) },
        { key: 'json-invalid', value: frame(jsonId, Buffer.from(JSON.stringify({ ...native, requestId: 5 }))) },
        { key: 'unknown-id', value: frame(2_000_000_000, avroAnswered.subarray(5)) },
        { key: 'wrong-magic', value: JSON.stringify(native) },
        { key: 'truncated', value: avroAnswered.subarray(0, avroAnswered.length - 4) },
        { key: 'short-frame', value: Buffer.from([0, 0, 0]) },
      ],
    });

    const records = await scope.read(topic);
    assert.equal(records.length, 8);
    const llmLogs = createInputAdapter(parseInputAdapterConfig(llmLogMapping), { registryUrl: infra.schemaRegistryUrl });
    const nativeEvents = createInputAdapter(parseInputAdapterConfig({ kind: 'schema-registry' }), { registryUrl: infra.schemaRegistryUrl });
    const results = new Map<string, AdaptResult>();
    for (const record of records) {
      const key = record.key?.toString() ?? '';
      const adapter: InputAdapter = key.startsWith('json') ? nativeEvents : llmLogs;
      results.set(key, await adapter.adapt(record));
    }

    const first = requestOf(results.get('avro-1'));
    assert.deepEqual(
      first.request,
      RequestEventSchema.parse({
        schemaVersion: 1,
        requestId: answered.id,
        occurredAt: ts,
        route: '/v1/chat/completions',
        tenant: 'acme',
        sampling: { rate: 1, key: null, sampled: true },
        body: { temperature: 0.3, max_tokens: 128, model: 'llama-3-8b', messages },
        headers: {},
      }),
    );
    assert.equal(first.stable?.outcome, 'ok');
    assert.deepEqual(first.stable?.response?.choices, [{ index: 0, content: 'Oslo.', toolCalls: [], finishReason: 'stop' }]);
    assert.deepEqual(first.stable?.usage, { prompt: 24, completion: 3, total: 27, source: 'usage' });
    assert.deepEqual(first.stable?.timing, { sentAt: ts, ttftMs: 180, e2eMs: 412.5, tpotMs: (412.5 - 180) / 2, itl: null, outputTokensPerSec: 3 / ((412.5 - 180) / 1000) });

    const second = requestOf(results.get('avro-2'));
    assert.equal(second.request.tenant, undefined, 'a null Avro union is no tenant');
    assert.deepEqual(second.request.body, { model: 'llama-3-8b', messages }, 'null Avro parameters are dropped');
    assert.equal(second.stable?.outcome, 'error');
    assert.deepEqual(second.stable?.error, { code: 'http_status', message: 'the stable model answered HTTP 503', retryable: true });

    assert.deepEqual(requestOf(results.get('json-1')), { request: native }, 'JSON Schema records are native events');
    assert.match(reasonOf(results.get('json-invalid')), new RegExp(`^registry_decode: JSON schema ${jsonId}: payload does not match the schema: /requestId (should|must) be string$`));
    assert.equal(reasonOf(results.get('unknown-id')), 'registry: unknown schema id 2000000000');
    assert.match(reasonOf(results.get('wrong-magic')), /^not_confluent_framed: magic byte 0x7b, expected 0x00 \(the value looks like plain JSON/);
    assert.equal(reasonOf(results.get('truncated')), `registry_decode: AVRO schema ${avroId}: truncated buffer`);
    assert.match(reasonOf(results.get('short-frame')), /^truncated_frame: 3 bytes/);
  });

  it('retry instead of dead-lettering when the registry address is not the Confluent-compatible API', async (t) => {
    const infra = testInfra();
    const registry = new SchemaRegistry({ host: infra.schemaRegistryUrl });
    const subject = `${testScope(t, () => ({})).id}-misaddressed-value`;
    const id = await registerSchema(t, infra.schemaRegistryUrl, subject, {
      type: SchemaType.AVRO,
      schema: JSON.stringify({ type: 'record', name: 'Ping', namespace: `com.example.${subject.replace(/[^A-Za-z0-9]/g, '_')}`, fields: [{ name: 'id', type: 'string' }] }),
    });
    const value = await registry.encode(id, { id: 'p-1' });
    const record: ConsumedRecord = { topic: 'tapped', partition: 0, offset: '0', timestamp: String(Date.now()), key: null, value, headers: {} };
    // Apicurio's own API answers 404 for the Confluent path: a wrong base URL, not an unknown schema.
    const coreApi = `${new URL(infra.schemaRegistryUrl).origin}/apis/registry/v3`;
    const misaddressed = createInputAdapter(parseInputAdapterConfig({ kind: 'schema-registry', mapping: { requestId: '/id', messages: '/id' } }), { registryUrl: coreApi });
    await assert.rejects(misaddressed.adapt(record), (error: unknown) => error instanceof InputAdapterError && error.retryable && error.code === InputAdapterErrorCode.registryMisconfigured);
    const addressed = createInputAdapter(parseInputAdapterConfig({ kind: 'schema-registry', mapping: { requestId: '/id', messages: '/id' } }), { registryUrl: infra.schemaRegistryUrl });
    assert.equal(requestOf(await addressed.adapt(record)).request.requestId, 'p-1');
  });
});
