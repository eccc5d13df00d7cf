/**
 * The schema-registry adapter against a local stand-in for the registry's `GET /schemas/ids/{id}`,
 * to force the failure paths (5xx, hangs, wrong URLs) a real registry will not produce on demand.
 * test/input-adapters.test.ts runs the same adapter against the real Apicurio registry.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { waitFor, type ConsumedRecord } from '@shadow-replay/platform';
import avsc from 'avsc';
import { FieldMappingSchema } from '@shadow-replay/contracts';
import { InputAdapterError, InputAdapterErrorCode } from '../src/adapters/errors.js';
import { SchemaRegistryAdapter, readConfluentFrame, toPlainJson } from '../src/adapters/schema-registry.js';
import type { AdaptResult } from '../src/adapters/types.js';

type Answer = { status: number; body: unknown } | 'hang';

const avroSchema = {
  type: 'record',
  name: 'ChatLog',
  namespace: 'com.example.llm',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'ts', type: 'long' },
    { name: 'prompt', type: 'string' },
    { name: 'blob', type: ['null', 'bytes'], default: null },
  ],
};
const avroType = avsc.Type.forSchema(avroSchema as avsc.Schema);
const jsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: { requestId: { type: 'string' }, at: { type: 'string', format: 'date-time' } },
  required: ['requestId'],
};

/**
 * A registry stand-in; `answers` decides per schema id, `hits` counts lookups per id and
 * `openConnections` tells how many client connections are still open.
 */
async function fakeRegistry(t: TestContext, answer: (id: number) => Answer): Promise<{ url: string; hits: Map<number, number>; openConnections: () => number }> {
  const hits = new Map<number, number>();
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    const match = /\/schemas\/ids\/(\d+)$/.exec(request.url ?? '');
    const id = Number(match?.[1] ?? -1);
    hits.set(id, (hits.get(id) ?? 0) + 1);
    const result: Answer = match === null ? { status: 404, body: { message: 'HTTP 404 Not Found' } } : answer(id);
    if (result === 'hang') return;
    response.writeHead(result.status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(result.body));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/apis/ccompat/v7`, hits, openConnections: () => sockets.size };
}

function frame(schemaId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, payload]);
}

function record(value: Buffer | null, offset = '0'): ConsumedRecord {
  return { topic: 'llm.avro', partition: 0, offset, timestamp: '1714564800000', key: null, value, headers: {} };
}

const chatLogMapping = FieldMappingSchema.parse({ requestId: '/id', occurredAt: '/ts', messages: '/prompt' });

function reasonOf(result: AdaptResult): string {
  assert.equal(result.ok, false, 'expected poison');
  return result.ok ? '' : result.reason;
}

async function rejectsWith(promise: Promise<unknown>, code: InputAdapterErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof InputAdapterError, `expected an InputAdapterError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.retryable, true);
    assert.match(error.message, message);
    return true;
  });
}

describe('Confluent wire format', () => {
  it('accepts a zero magic byte, a positive schema id and a payload', () => {
    const bytes = frame(42, Buffer.from('x'));
    assert.deepEqual(readConfluentFrame(bytes), { ok: true, schemaId: 42, bytes });
  });

  it('refuses empty, unframed, short and zero-id values with a reason each', () => {
    assert.deepEqual(readConfluentFrame(null), { ok: false, reason: 'empty_value: the record has no value' });
    assert.deepEqual(readConfluentFrame(Buffer.alloc(0)), { ok: false, reason: 'empty_value: the record has no value' });
    assert.equal(
      reasonOf(readConfluentFrame(Buffer.from('{"id":1}')) as AdaptResult),
      'not_confluent_framed: magic byte 0x7b, expected 0x00 (the value looks like plain JSON: read this topic with kind "native" or "field-mapping")',
    );
    assert.equal(reasonOf(readConfluentFrame(Buffer.from([0x01, 0, 0, 0, 1, 9])) as AdaptResult), 'not_confluent_framed: magic byte 0x01, expected 0x00');
    assert.match(reasonOf(readConfluentFrame(Buffer.from([0, 0, 0])) as AdaptResult), /^truncated_frame: 3 bytes; a Confluent frame is a 0x00 magic byte, a 4-byte schema id, then the payload$/);
    assert.equal(reasonOf(readConfluentFrame(frame(0, Buffer.from('x'))) as AdaptResult), 'registry: invalid schema id 0 in the frame');
  });
});

describe('schema-registry adapter', () => {
  it('decodes Avro through the registry, maps it, and fetches each schema once', async (t) => {
    const registry = await fakeRegistry(t, (id) => (id === 7 ? { status: 200, body: { schema: JSON.stringify(avroSchema) } } : { status: 404, body: { error_code: 40403, message: 'not found' } }));
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url, mapping: chatLogMapping });
    const results = await Promise.all(
      [1, 2, 3].map((i) => adapter.adapt(record(frame(7, avroType.toBuffer({ id: `a-${i}`, ts: 1714564800000 + i, prompt: `p${i}`, blob: null })), String(i)))),
    );
    assert.deepEqual(
      results.map((result) => (result.ok ? [result.value.request.requestId, result.value.request.occurredAt, result.value.request.body.messages] : result.reason)),
      [1, 2, 3].map((i) => [`a-${i}`, 1714564800000 + i, [{ role: 'user', content: `p${i}` }]]),
    );
    assert.equal(registry.hits.get(7), 1, 'the schema is cached after the first lookup');
  });

  it('reads JSON Schema records as native events and reports every schema violation with its path', async (t) => {
    const registry = await fakeRegistry(t, () => ({ status: 200, body: { schema: JSON.stringify(jsonSchema), schemaType: 'JSON' } }));
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url });
    const invalid = reasonOf(await adapter.adapt(record(frame(8, Buffer.from(JSON.stringify({ requestId: 5 }))))));
    // ajv 7 says "should be", later versions "must be".
    assert.match(invalid, /^registry_decode: JSON schema 8: payload does not match the schema: \/requestId (should|must) be string$/);
    const notJson = reasonOf(await adapter.adapt(record(frame(8, Buffer.from('{"requestId":')))));
    assert.match(notJson, /^registry_decode: JSON schema 8: Unexpected end of JSON input/);
    const notNative = reasonOf(await adapter.adapt(record(frame(8, Buffer.from(JSON.stringify({ requestId: 'r', at: 'not checked: unknown formats are tolerated' }))))));
    assert.match(notNative, /^schema_invalid: schemaVersion: /, 'valid against its own schema, but not a native RequestEvent');
  });

  it('dead-letters an Avro payload that is truncated or has trailing bytes', async (t) => {
    const registry = await fakeRegistry(t, () => ({ status: 200, body: { schema: JSON.stringify(avroSchema) } }));
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url, mapping: chatLogMapping });
    const payload = avroType.toBuffer({ id: 'a', ts: 1, prompt: 'hello world', blob: null });
    assert.equal(reasonOf(await adapter.adapt(record(frame(7, payload.subarray(0, payload.length - 3))))), 'registry_decode: AVRO schema 7: truncated buffer');
    assert.equal(reasonOf(await adapter.adapt(record(frame(7, Buffer.concat([payload, Buffer.from([1, 2])]))))), 'registry_decode: AVRO schema 7: trailing data');
  });

  it('dead-letters a schema id the registry says it does not have, without throwing', async (t) => {
    const registry = await fakeRegistry(t, (id) => ({ status: 404, body: { error_code: 40403, message: `Schema ${id} not found.` } }));
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url });
    assert.equal(reasonOf(await adapter.adapt(record(frame(9, Buffer.from('x'))))), 'registry: unknown schema id 9');
  });

  it('dead-letters Protobuf and schemas the client cannot compile', async (t) => {
    const registry = await fakeRegistry(t, (id) =>
      id === 10 ? { status: 200, body: { schema: 'syntax = "proto3"; message M { string a = 1; }', schemaType: 'PROTOBUF' } } : { status: 200, body: { schema: '{"type":"record","name":"Bad","fields":[{"name":"x","type":"nope"}]}' } },
    );
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url });
    assert.equal(reasonOf(await adapter.adapt(record(frame(10, Buffer.from([0, 2, 0x41]))))), 'unsupported_schema_type: PROTOBUF (schema id 10); this adapter reads Avro and JSON Schema records');
    assert.match(reasonOf(await adapter.adapt(record(frame(11, Buffer.from([0]))))), /^registry: schema id 11 cannot be compiled: .*nope/);
  });

  it('rejects with a retryable error, instead of dead-lettering, when the registry fails', async (t) => {
    const registry = await fakeRegistry(t, (id) => (id === 12 ? { status: 503, body: { message: 'overloaded' } } : { status: 401, body: { message: 'Unauthorized' } }));
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url });
    await rejectsWith(adapter.adapt(record(frame(12, Buffer.from('x')))), InputAdapterErrorCode.registryUnavailable, /looking up schema id 12 failed \(status 503\)/);
    assert.equal(registry.hits.get(12), 3, 'the client retried twice before giving up');
    await rejectsWith(adapter.adapt(record(frame(13, Buffer.from('x')))), InputAdapterErrorCode.registryMisconfigured, /status 401/);
  });

  it('treats a 404 that is not "schema not found" as a misconfigured URL, not as poison', async (t) => {
    const registry = await fakeRegistry(t, () => ({ status: 404, body: { message: 'HTTP 404 Not Found' } }));
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url });
    await rejectsWith(adapter.adapt(record(frame(14, Buffer.from('x')))), InputAdapterErrorCode.registryMisconfigured, /answered 404 .*check that SCHEMA_REGISTRY_URL is the base of the Confluent-compatible API/);
  });

  it('rejects with a retryable error when the registry is unreachable or does not answer in time', async (t) => {
    const closed = await fakeRegistry(t, () => ({ status: 200, body: {} }));
    const port = new URL(closed.url).port;
    // A port nothing listens on: bind one, then close it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const freePort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    assert.notEqual(String(freePort), port);
    const unreachable = new SchemaRegistryAdapter({ registryUrl: `http://127.0.0.1:${freePort}/apis/ccompat/v7` });
    await rejectsWith(unreachable.adapt(record(frame(15, Buffer.from('x')))), InputAdapterErrorCode.registryUnavailable, /failed \(unreachable\): .*ECONNREFUSED/);

    const hanging = await fakeRegistry(t, () => 'hang');
    const slow = new SchemaRegistryAdapter({ registryUrl: hanging.url, timeoutMs: 300 });
    const started = Date.now();
    await rejectsWith(slow.adapt(record(frame(16, Buffer.from('x')))), InputAdapterErrorCode.registryUnavailable, /no answer for schema id 16 within 300 ms/);
    assert.ok(Date.now() - started < 5_000);
    assert.equal(hanging.hits.get(16), 3, 'each of the three attempts asked once');
    // An abandoned request must not hold its connection until the registry's idle timeout
    // (30 minutes for Apicurio): that kept test processes, and would keep a replay, from exiting.
    await waitFor(() => hanging.openConnections() === 0, { timeoutMs: 5_000, what: 'the client to close the connections of the requests it gave up' });
  });

  it('asks again when the registry loses one answer, and decodes the record within the deadline', async (t) => {
    const registry = await fakeRegistry(t, (id) => (registry.hits.get(id) === 1 ? 'hang' : { status: 200, body: { schema: JSON.stringify(avroSchema) } }));
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url, mapping: chatLogMapping, timeoutMs: 900 });
    const result = await adapter.adapt(record(frame(17, avroType.toBuffer({ id: 'lost-once', ts: 1714564800000, prompt: 'p', blob: null }))));
    assert.ok(result.ok && result.value.request.requestId === 'lost-once');
    assert.equal(registry.hits.get(17), 2, 'the lost request, then one more');
  });

  it('decodes the same record once the registry is back', async (t) => {
    let down = true;
    const registry = await fakeRegistry(t, () => (down ? { status: 500, body: { message: 'down' } } : { status: 200, body: { schema: JSON.stringify(avroSchema) } }));
    const adapter = new SchemaRegistryAdapter({ registryUrl: registry.url, mapping: chatLogMapping });
    const value = record(frame(7, avroType.toBuffer({ id: 'back', ts: 1714564800000, prompt: 'p', blob: null })));
    await assert.rejects(adapter.adapt(value), InputAdapterError);
    down = false;
    const result = await adapter.adapt(value);
    assert.ok(result.ok && result.value.request.requestId === 'back');
  });
});

describe('decoded values as plain JSON', () => {
  it('turns Avro records into plain objects, bytes into base64 and large longs into strings', () => {
    const decoded = avroType.fromBuffer(avroType.toBuffer({ id: 'x', ts: 5, prompt: 'p', blob: Buffer.from('hi') })) as object;
    assert.notEqual(Object.getPrototypeOf(decoded), Object.prototype, 'avsc decodes records as class instances');
    assert.deepEqual(toPlainJson(decoded), { id: 'x', ts: 5, prompt: 'p', blob: Buffer.from('hi').toString('base64') });
    assert.deepEqual(toPlainJson({ big: 2n ** 60n, small: 7n, when: new Date(5), list: [undefined, null], skip: undefined }), { big: '1152921504606846976', small: 7, when: 5, list: [null, null] });
  });
});
