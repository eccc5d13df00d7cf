import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODE_FORMAT } from '@shadow-replay/contracts';
import { PlatformError } from '@shadow-replay/platform';
import { InputAdapterConfigSchema } from '@shadow-replay/contracts';
import { createInputAdapter, parseInputAdapterConfig } from '../src/adapters/create-input-adapter.js';
import { InputAdapterError, InputAdapterErrorCode } from '../src/adapters/errors.js';
import { FieldMappingAdapter } from '../src/adapters/field-mapping.js';
import { NativeAdapter } from '../src/adapters/native.js';
import { SchemaRegistryAdapter } from '../src/adapters/schema-registry.js';

function configError(raw: unknown): string {
  try {
    parseInputAdapterConfig(raw);
  } catch (error) {
    assert.ok(error instanceof PlatformError);
    return error.message;
  }
  return assert.fail('expected a configuration error');
}

describe('input adapter configuration', () => {
  it('fills the defaults of every kind', () => {
    assert.deepEqual(parseInputAdapterConfig({ kind: 'native' }), { kind: 'native' });
    assert.deepEqual(parseInputAdapterConfig({ kind: 'field-mapping', mapping: { requestId: '/id', messages: '/messages' } }), {
      kind: 'field-mapping',
      mapping: { requestId: '/id', messages: '/messages', requestIdFallback: 'none', occurredAtUnit: 'auto', defaultRoute: '/v1/chat/completions' },
    });
    assert.deepEqual(parseInputAdapterConfig({ kind: 'schema-registry', topics: ['llm.logs'] }), { kind: 'schema-registry', topics: ['llm.logs'], timeoutMs: 10_000 });
    const stable = InputAdapterConfigSchema.parse({ kind: 'field-mapping', mapping: { requestId: '/id', messages: '/m', stable: { content: '/c', latencyMs: '/l' } } });
    assert.equal(stable.kind === 'field-mapping' && stable.mapping.stable?.endpointName, 'stable');
  });

  it('names the field path, what is expected and what was given', () => {
    assert.equal(configError({ kind: 'kafka-connect' }), 'config: experiment.input.kind: kind must be "native", "field-mapping" or "schema-registry"');
    assert.match(configError({ kind: 'field-mapping', mapping: { requestId: 'id', messages: '/m' } }), /^config: experiment\.input\.mapping\.requestId: an RFC 6901 JSON pointer .* \(got "id"\)$/);
    assert.match(configError({ kind: 'field-mapping', mapping: { requestId: '/id', messages: '/m', stable: { content: '/c', latencyMs: '/l', status: '/a~2' } } }), /experiment\.input\.mapping\.stable\.status: an RFC 6901 JSON pointer/);
    assert.match(configError({ kind: 'field-mapping', mapping: { messages: '/m' } }), /experiment\.input\.mapping\.requestId: a pointer to the request id is required unless requestIdFallback is "key" or "offset"/);
    assert.match(configError({ kind: 'field-mapping', mapping: { requestId: '/id' } }), /experiment\.input\.mapping\.messages: a pointer to the messages is required/);
    assert.match(configError({ kind: 'field-mapping', mapping: { requestId: '/id', messages: '/m', stable: { latencyMs: '/l' } } }), /experiment\.input\.mapping\.stable\.content: map the answer/);
    assert.match(configError({ kind: 'field-mapping', mapping: { requestId: '/id', messages: '/m', stable: { content: '/c' } } }), /experiment\.input\.mapping\.stable\.latencyMs: /);
    assert.match(configError({ kind: 'field-mapping', mapping: { requestId: '/id', messages: '/m', occurredAtUnit: 'days' } }), /experiment\.input\.mapping\.occurredAtUnit: /);
    assert.match(configError({ kind: 'field-mapping', mapping: { requestId: '/id', messages: '/m', requestID: '/x' } }), /experiment\.input\.mapping: Unrecognized key: "requestID"/);
    assert.match(configError({ kind: 'schema-registry', timeoutMs: 0 }), /experiment\.input\.timeoutMs: /);
    assert.match(configError({ kind: 'native', mapping: {} }), /experiment\.input: Unrecognized key: "mapping"/);
  });

  it('accepts pointers with escaped characters and the whole-record pointer', () => {
    const parsed = parseInputAdapterConfig({ kind: 'field-mapping', mapping: { requestId: '/meta/x~1request~1id', messages: '/m~0n', body: '' } });
    assert.equal(parsed.kind, 'field-mapping');
  });
});

describe('createInputAdapter', () => {
  it('builds the adapter the configuration names', () => {
    assert.ok(createInputAdapter(parseInputAdapterConfig({ kind: 'native' })) instanceof NativeAdapter);
    assert.ok(createInputAdapter(parseInputAdapterConfig({ kind: 'field-mapping', mapping: { requestId: '/id', messages: '/m' } })) instanceof FieldMappingAdapter);
    const registry = createInputAdapter(parseInputAdapterConfig({ kind: 'schema-registry' }), { registryUrl: 'http://127.0.0.1:8081/apis/ccompat/v7' });
    assert.ok(registry instanceof SchemaRegistryAdapter);
    assert.equal(registry.kind, 'schema-registry');
  });

  it('fails at start, naming SCHEMA_REGISTRY_URL, when a schema-registry input has no registry address', () => {
    const config = parseInputAdapterConfig({ kind: 'schema-registry' });
    assert.throws(() => createInputAdapter(config, {}), (error: unknown) => error instanceof PlatformError && /experiment\.input\.kind is "schema-registry" but SCHEMA_REGISTRY_URL is not set/.test(error.message));
    assert.throws(() => createInputAdapter(config, { registryUrl: '127.0.0.1:8081' }), /SCHEMA_REGISTRY_URL must be an http\(s\) URL/);
  });
});

describe('input adapter error codes', () => {
  it('are upper snake case with the REPLAY_ prefix, unique, and always retryable', () => {
    const codes = Object.values(InputAdapterErrorCode);
    for (const code of codes) {
      assert.match(code, ERROR_CODE_FORMAT);
      assert.ok(code.startsWith('REPLAY_'), code);
      assert.equal(new InputAdapterError(code, 'x').retryable, true);
    }
    assert.equal(new Set(codes).size, codes.length);
  });
});
