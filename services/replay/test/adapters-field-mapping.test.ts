import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { RequestEventSchema, type RequestEvent } from '@shadow-replay/contracts';
import type { ConsumedRecord } from '@shadow-replay/platform';
import { FieldMappingSchema, type FieldMapping } from '@shadow-replay/contracts';
import { FieldMapper, FieldMappingAdapter } from '../src/adapters/field-mapping.js';
import { NativeAdapter } from '../src/adapters/native.js';
import type { AdaptResult } from '../src/adapters/types.js';

const instant = Date.UTC(2024, 4, 1, 12, 0, 0);

function record(value: unknown, overrides: Partial<ConsumedRecord> = {}): ConsumedRecord {
  return {
    topic: 'llm.logs',
    partition: 2,
    offset: '41',
    timestamp: String(instant + 5_000),
    key: Buffer.from('key-1'),
    value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    headers: {},
    ...overrides,
  };
}

const combinedMapping = {
  requestId: '/id',
  occurredAt: '/ts',
  messages: '/request/messages',
  model: '/request/model',
  tenant: '/org',
  params: '/request/params',
  stable: {
    content: '/response/text',
    finishReason: '/response/finish_reason',
    promptTokens: '/usage/in',
    completionTokens: '/usage/out',
    latencyMs: '/latency_ms',
    ttftMs: '/ttft_ms',
    status: '/status',
    error: '/error',
  },
};

function combinedRecord(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'req-1',
    ts: '2024-05-01T12:00:00Z',
    org: 'acme',
    request: { model: 'gpt-x', messages: [{ role: 'user', content: 'hi' }], params: { temperature: 0.2, max_tokens: 64, top_p: null } },
    response: { text: 'hello', finish_reason: 'stop' },
    usage: { in: 12, out: 5 },
    latency_ms: 850,
    ttft_ms: 250,
    status: 200,
    error: null,
    ...overrides,
  };
}

function adapter(mapping: Record<string, unknown>): FieldMappingAdapter {
  return new FieldMappingAdapter(FieldMappingSchema.parse(mapping));
}

function reasonOf(result: AdaptResult): string {
  assert.equal(result.ok, false, 'expected poison');
  return result.ok ? '' : result.reason;
}

function valueOf(result: AdaptResult) {
  if (!result.ok) assert.fail(`expected an event, got ${result.reason}`);
  return result.value;
}

describe('field-mapping adapter', () => {
  it('turns a combined record into the request and the stable answer', async () => {
    const { request, stable } = valueOf(await adapter(combinedMapping).adapt(record(combinedRecord())));
    assert.deepEqual(request, {
      schemaVersion: 1,
      requestId: 'req-1',
      occurredAt: instant,
      route: '/v1/chat/completions',
      tenant: 'acme',
      sampling: { rate: 1, key: null, sampled: true },
      body: { temperature: 0.2, max_tokens: 64, model: 'gpt-x', messages: [{ role: 'user', content: 'hi' }] },
      headers: {},
    });
    assert.deepEqual(stable, {
      schemaVersion: 1,
      requestId: 'req-1',
      arm: 'stable',
      occurredAt: instant + 850,
      endpoint: { name: 'stable', model: 'gpt-x' },
      outcome: 'ok',
      status: 200,
      error: null,
      response: { choices: [{ index: 0, content: 'hello', toolCalls: [], finishReason: 'stop' }] },
      usage: { prompt: 12, completion: 5, total: 17, source: 'usage' },
      timing: { sentAt: instant, ttftMs: 250, e2eMs: 850, tpotMs: 150, itl: null, outputTokensPerSec: 5 / 0.6 },
      streamed: true,
    });
  });

  it('gives no stable answer when the mapping has no stable part', async () => {
    const { stable: _stable, ...requestOnly } = combinedMapping;
    const adapted = valueOf(await adapter(requestOnly).adapt(record(combinedRecord())));
    assert.equal(adapted.stable, undefined);
    assert.equal(adapted.request.requestId, 'req-1');
  });

  it('makes the stable outcome an error for a status of 400 or more, or an error value, even without an answer', async () => {
    const unavailable = valueOf(await adapter(combinedMapping).adapt(record(combinedRecord({ status: 503, response: null, usage: null }))));
    assert.equal(unavailable.stable?.outcome, 'error');
    assert.deepEqual(unavailable.stable?.error, { code: 'http_status', message: 'the stable model answered HTTP 503', retryable: true });
    assert.equal(unavailable.stable?.response, null);
    assert.equal(unavailable.stable?.usage, null);

    const failed = valueOf(await adapter(combinedMapping).adapt(record(combinedRecord({ status: null, error: { message: 'context length exceeded', type: 'invalid_request' } }))));
    assert.equal(failed.stable?.outcome, 'error');
    assert.deepEqual(failed.stable?.error, { code: 'request_failed', message: 'context length exceeded', retryable: false });

    for (const noError of [null, '', false, {}]) {
      const ok = valueOf(await adapter(combinedMapping).adapt(record(combinedRecord({ error: noError }))));
      assert.equal(ok.stable?.outcome, 'ok', JSON.stringify(noError));
    }
  });

  it('names the pointer when a required value is missing', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ id: undefined }, 'mapping_missing: requestId: nothing at /id (set requestIdFallback to "key" or "offset" to accept records without one)'],
      [{ id: null }, 'mapping_missing: requestId: nothing at /id'],
      [{ ts: undefined }, 'mapping_missing: occurredAt: nothing at /ts'],
      [{ request: { model: 'gpt-x' } }, 'mapping_missing: messages: nothing at /request/messages'],
      [{ latency_ms: undefined }, 'mapping_missing: stable.latencyMs: nothing at /latency_ms'],
      [{ response: {} }, 'mapping_missing: stable.content: nothing at /response/text'],
    ];
    for (const [overrides, reason] of cases) {
      const actual = reasonOf(await adapter(combinedMapping).adapt(record(combinedRecord(overrides))));
      assert.ok(actual.startsWith(reason), `${actual} should start with ${reason}`);
    }
  });

  it('names the pointer and the value when a value has the wrong type', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ id: { nested: true } }, /^mapping_invalid: requestId at \/id: expected a string or an integer, got an object$/],
      [{ ts: 'yesterday' }, /^mapping_invalid: occurredAt at \/ts: "yesterday" is not epoch seconds\/milliseconds or an ISO 8601 time/],
      [{ ts: '2024-05-01T12:00:00' }, /^mapping_invalid: occurredAt at \/ts: .*has no time zone/],
      [{ request: { messages: { role: 'user' } } }, /^mapping_invalid: messages at \/request\/messages: expected an array of messages or a string, got an object$/],
      [{ request: { messages: [], model: 7 } }, /^mapping_invalid: model at \/request\/model: expected a string, got a number$/],
      [{ request: { messages: [{ role: 'user', content: 'x' }], params: ['temperature'] } }, /^mapping_invalid: params at \/request\/params: expected an object, got an array$/],
      [{ usage: { in: -3, out: 5 } }, /^mapping_invalid: stable\.promptTokens at \/usage\/in: expected a non-negative integer, got -3$/],
      [{ latency_ms: 'slow' }, /^mapping_invalid: stable\.latencyMs at \/latency_ms: expected milliseconds/],
      [{ response: { text: 42 } }, /^mapping_invalid: stable\.content at \/response\/text: expected a string or null, got a number$/],
    ];
    for (const [overrides, pattern] of cases) assert.match(reasonOf(await adapter(combinedMapping).adapt(record(combinedRecord(overrides)))), pattern);
  });

  it('reports event validation failures with the field path and the pointer that supplied it', async () => {
    const noRole = reasonOf(await adapter(combinedMapping).adapt(record(combinedRecord({ request: { messages: [{ content: 'hi' }] } }))));
    assert.match(noRole, /^schema_invalid: body\.messages\[0\]\.role: .* \(from \/request\/messages\)$/);
    const empty = reasonOf(await adapter(combinedMapping).adapt(record(combinedRecord({ request: { messages: [] } }))));
    assert.match(empty, /^schema_invalid: body\.messages: .* \(from \/request\/messages\)$/);
    const badTool = reasonOf(
      await adapter({ ...combinedMapping, stable: { ...combinedMapping.stable, toolCalls: '/response/tool_calls' } }).adapt(
        record(combinedRecord({ response: { text: null, tool_calls: [{ function: { arguments: '{}' } }] } })),
      ),
    );
    assert.match(badTool, /^schema_invalid: stable\.response\.choices\[0\]\.toolCalls\[0\]\.function\.name: .* \(from \/response\/tool_calls\)$/);
  });

  it('falls back to the Kafka key or to topic/partition/offset for a missing id only when configured', async () => {
    const noId = combinedRecord({ id: undefined });
    const byOffset = valueOf(await adapter({ ...combinedMapping, requestIdFallback: 'offset' }).adapt(record(noId)));
    assert.equal(byOffset.request.requestId, 'llm.logs/2/41');
    assert.equal(byOffset.stable?.requestId, 'llm.logs/2/41', 'both sides of a combined record share the id');
    const byKey = valueOf(await adapter({ ...combinedMapping, requestIdFallback: 'key' }).adapt(record(noId)));
    assert.equal(byKey.request.requestId, 'key-1');
    assert.match(reasonOf(await adapter({ ...combinedMapping, requestIdFallback: 'key' }).adapt(record(noId, { key: null }))), /^mapping_missing: requestId: nothing at \/id and the record has no key/);
    const present = valueOf(await adapter({ ...combinedMapping, requestIdFallback: 'offset' }).adapt(record(combinedRecord())));
    assert.equal(present.request.requestId, 'req-1', 'the fallback applies only when the id is missing');
    const numeric = valueOf(await adapter(combinedMapping).adapt(record(combinedRecord({ id: 90210 }))));
    assert.equal(numeric.request.requestId, '90210');
  });

  it('takes occurredAt from the Kafka record timestamp when it is not mapped', async () => {
    const { occurredAt: _occurredAt, ...mapping } = combinedMapping;
    const adapted = valueOf(await adapter(mapping).adapt(record(combinedRecord())));
    assert.equal(adapted.request.occurredAt, instant + 5_000);
    assert.equal(adapted.stable?.timing.sentAt, instant + 5_000);
  });

  it('reads epoch seconds, milliseconds and ISO strings for occurredAt', async () => {
    for (const ts of [instant / 1000, instant, '2024-05-01T14:00:00+02:00', String(instant)]) {
      const adapted = valueOf(await adapter(combinedMapping).adapt(record(combinedRecord({ ts }))));
      assert.equal(adapted.request.occurredAt, instant, String(ts));
    }
  });

  it('builds the body from a whole body, then params without nulls, model and messages, and wraps a prompt string as a user message', async () => {
    const mapping = { requestId: '/id', body: '/openai', params: '/overrides', model: '/deployment', route: '/path' };
    const doc = {
      id: 'r',
      path: '/v1/chat/completions',
      deployment: 'gpt-prod',
      openai: { model: 'gpt-x', messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }], temperature: 1, seed: null },
      overrides: { temperature: 0, top_p: null },
    };
    const adapted = valueOf(await adapter(mapping).adapt(record(doc)));
    assert.deepEqual(adapted.request.body, { model: 'gpt-prod', messages: doc.openai.messages, temperature: 0 });
    assert.equal(adapted.request.route, '/v1/chat/completions');
    const prompt = valueOf(await adapter({ requestId: '/id', messages: '/prompt' }).adapt(record({ id: 'p', prompt: 'Summarise this.' })));
    assert.deepEqual(prompt.request.body, { messages: [{ role: 'user', content: 'Summarise this.' }] });
    assert.equal(prompt.request.route, '/v1/chat/completions', 'defaultRoute');
    assert.match(reasonOf(await adapter(mapping).adapt(record({ id: 'r', openai: { model: 'm' } }))), /^mapping_missing: messages: nothing at \/openai\/messages$/);
  });

  it('keeps mapped headers that are strings, lower-cases their names and never keeps credentials', async () => {
    const adapted = valueOf(
      await adapter({ requestId: '/id', messages: '/m', headers: '/h' }).adapt(
        record({ id: 'h', m: 'hi', h: { 'User-Agent': 'sdk/1', Authorization: 'Bearer secret', cookie: 'a=b', 'X-Api-Key': 'k', 'x-retries': 2 } }),
      ),
    );
    assert.deepEqual(adapted.request.headers, { 'user-agent': 'sdk/1' });
  });

  it('serialises tool-call arguments given as objects and accepts a null content beside tool calls', async () => {
    const mapping = { ...combinedMapping, stable: { ...combinedMapping.stable, toolCalls: '/response/tool_calls' } };
    const doc = combinedRecord({
      response: { text: null, finish_reason: 'tool_calls', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: { city: 'Oslo' } } }] },
    });
    const { stable } = valueOf(await adapter(mapping).adapt(record(doc)));
    assert.deepEqual(stable?.response?.choices[0], {
      index: 0,
      content: null,
      toolCalls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"city":"Oslo"}' } }],
      finishReason: 'tool_calls',
    });
  });

  it('leaves TTFT, TPOT and throughput null when TTFT is not mapped, and marks the answer not streamed', async () => {
    const { ttftMs: _ttft, ...stableWithoutTtft } = combinedMapping.stable;
    const { stable } = valueOf(await adapter({ ...combinedMapping, stable: stableWithoutTtft }).adapt(record(combinedRecord())));
    assert.deepEqual(stable?.timing, { sentAt: instant, ttftMs: null, e2eMs: 850, tpotMs: null, itl: null, outputTokensPerSec: null });
    assert.equal(stable?.streamed, false);
  });

  it('gives the same request as the native event when the mapping points at native fields', async () => {
    const native: RequestEvent = {
      schemaVersion: 1,
      requestId: 'same-1',
      occurredAt: instant,
      route: '/v1/chat/completions',
      tenant: 't1',
      conversationId: 'c1',
      sampling: { rate: 1, key: null, sampled: true },
      body: { model: 'sim', messages: [{ role: 'user', content: 'hello' }], max_tokens: 32 },
      headers: { 'user-agent': 'test' },
    };
    const mapping = { requestId: '/requestId', occurredAt: '/occurredAt', occurredAtUnit: 'ms', route: '/route', tenant: '/tenant', conversationId: '/conversationId', body: '/body', headers: '/headers' };
    const mapped = valueOf(await adapter(mapping).adapt(record(native)));
    const direct = valueOf(await new NativeAdapter().adapt(record(native)));
    assert.deepEqual(mapped.request, direct.request);
    assert.deepEqual(mapped.request, RequestEventSchema.parse(native));
  });

  it('turns an empty value and invalid JSON into the same reasons as native events', async () => {
    const mapped = adapter(combinedMapping);
    assert.equal(reasonOf(await mapped.adapt(record(null))), 'empty_value: the record has no value');
    assert.match(reasonOf(await mapped.adapt(record('{"id": '))), /^invalid_json: /);
    assert.match(reasonOf(await mapped.adapt(record('[1,2]'))), /^mapping_missing: requestId: nothing at \/id/);
  });

  it('never throws, whatever bytes or JSON it is given', async () => {
    const mapped = adapter({ ...combinedMapping, stable: { ...combinedMapping.stable, toolCalls: '/response/tool_calls', streamed: '/s' }, headers: '/h', body: '/b' });
    const odd = ['null', 'true', '"text"', '0', '[]', '{}', '{"id":[],"ts":{}}', '{"b":"x","id":"1","ts":1}', '{"id":"1","ts":1,"b":{},"request":{"messages":[null]}}'];
    for (const text of odd) assert.equal((await mapped.adapt(record(text))).ok, false, text);
    for (let i = 0; i < 200; i++) assert.equal((await mapped.adapt(record(randomBytes(1 + (i % 64)).toString('latin1')))).ok, false);
  });
});

describe('field mapper on decoded objects', () => {
  it('maps an object directly, as the schema-registry adapter hands it over', () => {
    const mapping: FieldMapping = FieldMappingSchema.parse({ requestId: '/id', messages: '/messages' });
    const result = new FieldMapper(mapping).map({ id: 'obj-1', messages: [{ role: 'user', content: 'x' }] }, record(null));
    assert.equal(valueOf(result).request.requestId, 'obj-1');
  });
});

describe('native adapter', () => {
  it('reads our own RequestEvent and dead-letters anything else with the decodeEvent reasons', async () => {
    const event = { schemaVersion: 1, requestId: 'n1', occurredAt: instant, route: '/v1/chat/completions', sampling: { rate: 1, key: null, sampled: true }, body: { messages: [{ role: 'user', content: 'x' }] }, headers: {} };
    const native = new NativeAdapter();
    assert.equal(valueOf(await native.adapt(record(event))).request.requestId, 'n1');
    assert.match(reasonOf(await native.adapt(record({ ...event, body: { messages: 'nope' } }))), /^schema_invalid: body\.messages/);
    assert.match(reasonOf(await native.adapt(record('{'))), /^invalid_json: /);
  });
});
