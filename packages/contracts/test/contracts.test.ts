import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ContractErrorCode,
  DeadLetterHeader,
  ERROR_CODE_FORMAT,
  RequestEventSchema,
  ResponseEventSchema,
  ShadowConfigSchema,
  deadLetterMessage,
  slimDeadLetter,
  decodeEvent,
  evalQueuePrefix,
  evaluationKey,
  pairJobId,
  requestOrigin,
  type RequestEvent,
} from '../src/index.js';

const request = {
  schemaVersion: 1,
  requestId: 'req-1',
  occurredAt: 1_700_000_000_000,
  route: '/v1/chat/completions',
  sampling: { rate: 1, key: null, sampled: true },
  body: { model: 'm', messages: [{ role: 'user', content: 'hi' }], top_p: 0.5 },
  headers: { 'user-agent': 'test' },
};

describe('event decoding', () => {
  it('accepts a valid request event and keeps unknown body parameters', () => {
    const result = decodeEvent(RequestEventSchema, Buffer.from(JSON.stringify(request)));
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.value.body.top_p, 0.5);
  });

  it('ignores unknown top-level fields, so additive changes do not break old readers', () => {
    const result = decodeEvent(RequestEventSchema, JSON.stringify({ ...request, addedLater: true }));
    assert.equal(result.ok, true);
  });

  it('turns malformed JSON into a reason instead of throwing', () => {
    const result = decodeEvent(RequestEventSchema, Buffer.from('{"requestId": '));
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /^invalid_json: /);
  });

  it('names the failing field path of a schema-invalid event', () => {
    const result = decodeEvent(RequestEventSchema, JSON.stringify({ ...request, body: { messages: [] } }));
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /^schema_invalid: body\.messages: /);
  });

  it('treats an empty value as poison', () => {
    assert.deepEqual(decodeEvent(ResponseEventSchema, null), { ok: false, reason: 'empty_value: the record has no value' });
  });
});

describe('identifiers', () => {
  it('gives a pair the same job id every time, and different pairs different ids', () => {
    assert.equal(pairJobId('exp', 'r1', 'cand'), pairJobId('exp', 'r1', 'cand'));
    assert.notEqual(pairJobId('exp', 'r1', 'cand'), pairJobId('exp', 'r1', 'cand2'));
    assert.notEqual(pairJobId('e', 'xp/r1', 'cand'), pairJobId('exp', '/r1', 'cand'));
  });

  it('never produces a job id BullMQ rejects (a colon, or an integer)', () => {
    for (const requestId of ['a:b', '12345', '', 'x'.repeat(300)]) {
      const jobId = pairJobId('e:1', requestId, 'arm:1');
      assert.doesNotMatch(jobId, /:/);
      assert.ok(!/^\d+$/.test(jobId));
    }
  });

  it('gives the evaluation queue a prefix that is one Redis Cluster hash tag, and refuses a key prefix with braces', () => {
    // Redis hashes only what is inside the first {...}: every BullMQ key of the queue lands in one slot.
    assert.equal(evalQueuePrefix('shadow'), '{shadow:bull}');
    const parsed = ShadowConfigSchema.safeParse({ redis: { keyPrefix: 'team{a}' } });
    assert.ok(!parsed.success);
    assert.deepEqual(parsed.error.issues[0]?.path, ['redis', 'keyPrefix']);
  });

  it('keys evaluation records by experiment, request and arm', () => {
    assert.equal(evaluationKey('exp', 'r1', 'cand'), 'exp/r1/cand');
  });
});

describe('dead letters', () => {
  it('keeps the original bytes and headers and adds the reason headers', () => {
    const message = deadLetterMessage(
      { topic: 't', partition: 2, offset: '42', key: Buffer.from('k'), value: Buffer.from('{oops'), headers: { trace: 'x' } },
      'invalid_json: boom',
      'replay',
      'exp-1',
    );
    assert.equal(message.value?.toString(), '{oops');
    assert.equal(message.key?.toString(), 'k');
    assert.equal(message.headers.trace, 'x');
    assert.equal(message.headers[DeadLetterHeader.reason], 'invalid_json: boom');
    assert.equal(message.headers[DeadLetterHeader.stage], 'replay');
    assert.equal(message.headers[DeadLetterHeader.sourceTopic], 't');
    assert.equal(message.headers[DeadLetterHeader.partition], '2');
    assert.equal(message.headers[DeadLetterHeader.offset], '42');
    assert.equal(message.headers[DeadLetterHeader.experiment], 'exp-1');
  });

  it('can leave out the value, then the key and original headers, keeping the reason and the location', () => {
    const message = deadLetterMessage({ topic: 't', partition: 0, offset: '7', key: Buffer.from('key'), value: Buffer.alloc(100), headers: { trace: 'x' } }, 'invalid_json: boom', 'join');
    const withoutValue = slimDeadLetter(message, 1);
    assert.equal(withoutValue.value, null);
    assert.equal(withoutValue.key?.toString(), 'key');
    assert.equal(withoutValue.headers.trace, 'x');
    assert.equal(withoutValue.headers[DeadLetterHeader.omitted], "value (100 bytes): over the broker's message size limit");
    const bare = slimDeadLetter(message, 2);
    assert.equal(bare.key, null);
    assert.equal(bare.value, null);
    assert.equal(bare.headers.trace, undefined);
    assert.deepEqual(Object.keys(bare.headers).sort(), [DeadLetterHeader.offset, DeadLetterHeader.omitted, DeadLetterHeader.partition, DeadLetterHeader.reason, DeadLetterHeader.sourceTopic, DeadLetterHeader.stage].sort());
    assert.equal(bare.headers[DeadLetterHeader.omitted], "value (100 bytes), key (3 bytes) and the original headers: over the broker's message size limit");
  });
});

describe('error codes', () => {
  it('are upper snake case with the package prefix', () => {
    for (const code of Object.values(ContractErrorCode)) {
      assert.match(code, ERROR_CODE_FORMAT);
      assert.ok(code.startsWith('CONTRACTS_'));
    }
  });
});

describe('request origin on answers (for the report slices)', () => {
  const response = {
    schemaVersion: 1,
    requestId: 'req-1',
    experimentId: 'exp',
    arm: 'cand',
    occurredAt: 1_700_000_000_000,
    endpoint: { name: 'cand', model: null },
    outcome: 'ok',
    status: 200,
    error: null,
    response: null,
    usage: null,
    timing: { sentAt: 1_700_000_000_000, ttftMs: null, e2eMs: 5, tpotMs: null, itl: null, outputTokensPerSec: null },
    streamed: false,
  };

  it('copies route, request time, requested model, tenant and published headers, and survives decoding', () => {
    const event: RequestEvent = RequestEventSchema.parse({ ...request, tenant: 'acme' });
    const origin = requestOrigin(event);
    assert.deepEqual(origin, { route: '/v1/chat/completions', occurredAt: event.occurredAt, model: 'm', tenant: 'acme', headers: { 'user-agent': 'test' } });
    const decoded = decodeEvent(ResponseEventSchema, JSON.stringify({ ...response, origin }));
    assert.equal(decoded.ok && decoded.value.origin?.tenant, 'acme');
    assert.equal(decoded.ok && decoded.value.origin?.occurredAt, event.occurredAt);
    const older = decodeEvent(ResponseEventSchema, JSON.stringify(response));
    assert.ok(older.ok && older.value.origin === undefined, 'an answer without origin is still valid');
  });
});

describe('experiment.slices configuration', () => {
  const config = (tenantHeader: string | undefined, headerAllowlist?: string[]) =>
    ShadowConfigSchema.safeParse({
      gateway: { stable: { name: 'live', baseUrl: 'http://127.0.0.1:8000' }, ...(headerAllowlist === undefined ? {} : { headerAllowlist }) },
      experiment: { id: 'exp', candidates: [{ name: 'c', baseUrl: 'http://127.0.0.1:8001' }], ...(tenantHeader === undefined ? {} : { slices: { tenantHeader } }) },
    });

  it('accepts a tenant header the gateway publishes, lower-cased, and no tenant header at all', () => {
    const parsed = config('X-Org-Id', ['x-org-id']);
    assert.ok(parsed.success);
    assert.equal(parsed.data.experiment?.slices.tenantHeader, 'x-org-id');
    assert.ok(config(undefined, ['user-agent']).success, 'the default is not checked against the allowlist');
  });

  it('refuses a tenant header the gateway never publishes, naming the field', () => {
    const parsed = config('x-org-id', ['user-agent', 'x-tenant-id']);
    assert.ok(!parsed.success);
    assert.deepEqual(parsed.error.issues[0]?.path, ['experiment', 'slices', 'tenantHeader']);
    assert.match(parsed.error.issues[0]?.message ?? '', /x-org-id is not in gateway\.headerAllowlist/);
    const secret = config('authorization');
    assert.ok(!secret.success);
    assert.match(secret.error.issues[0]?.message ?? '', /credential header/);
  });
});
