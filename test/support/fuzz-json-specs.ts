/**
 * The JSON decoders the fuzz test feeds, described for test/support/fuzz-records.ts: how a valid
 * document looks and where each field can be broken so the document is certainly invalid.
 */
import { requestEvent, responseEvent } from './events.js';
import type { JsonDecoderSpec, JsonObject, Rng } from './fuzz-records.js';

const SCHEMA_INVALID = /^schema_invalid: ./;

function plain(value: object): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

/** Native RequestEvents on the request topic (replay's default input). */
export const requestEventSpec: JsonDecoderSpec = {
  valid: (rng: Rng, requestId: string) =>
    plain(requestEvent(requestId, { body: { messages: [{ role: 'user', content: `${rng.words(rng.int(3, 40))}?` }], ...(rng.chance(0.5) ? { temperature: 0.2, max_tokens: rng.int(16, 256) } : {}) } })),
  wrongTypes: [
    [['schemaVersion'], [2, '1', null, 0]],
    [['requestId'], [5, ['a'], {}, true]],
    [['occurredAt'], [-1, 1.5, '2025-01-01', null, 1e300]],
    [['route'], ['', 5, null]],
    [['sampling'], ['all', [], null]],
    [['sampling', 'rate'], [2, -0.1, '1']],
    [['sampling', 'key'], [5, {}]],
    [['sampling', 'sampled'], ['yes', 1]],
    [['body'], ['hello', [], null]],
    [['body', 'messages'], [[], 'hello', {}, [{}], [{ role: '' }], [{ role: 5 }], [null]]],
    [['body', 'max_tokens'], [0, -5, 1.5, '100']],
    [['body', 'temperature'], ['hot', null]],
    [['body', 'stream'], ['yes', 1]],
    [['body', 'model'], [5, {}]],
    [['headers'], ['h', [], null, { a: 1 }]],
    [['tenant'], [5, {}, null]],
    [['conversationId'], [5, []]],
  ],
  ids: [['requestId']],
  hugeTargets: [['occurredAt'], ['sampling'], ['body', 'messages'], ['body', 'max_tokens'], ['schemaVersion'], ['headers']],
  textPath: ['body', 'messages', 0, 'content'],
  loosePaths: [[], ['body'], ['body', 'messages', 0]],
  invalidReason: SCHEMA_INVALID,
};

/** The field mapping replay reads {@link foreignRequestSpec} documents with (`experiment.input.mapping`). */
export const FOREIGN_MAPPING = {
  requestId: '/id',
  occurredAt: '/ts',
  tenant: '/org',
  messages: '/prompt/messages',
  model: '/prompt/model',
  params: '/prompt/params',
} as const;

/** Another team's request log on a tapped topic, read through {@link FOREIGN_MAPPING}. */
export const foreignRequestSpec: JsonDecoderSpec = {
  valid: (rng: Rng, requestId: string) =>
    plain({
      id: requestId,
      ts: rng.chance(0.5) ? Date.now() : new Date().toISOString(),
      org: rng.pick(['acme', 'globex']),
      prompt: { model: 'sim', messages: [{ role: 'user', content: `${rng.words(rng.int(3, 40))}?` }], params: rng.chance(0.5) ? { temperature: 0.5, max_tokens: 64 } : {} },
      meta: { region: 'eu', sdk: 'python/1.2' },
    }),
  wrongTypes: [
    [['id'], [{}, [], true, 1.5, -0.5]],
    [['ts'], ['yesterday', '2025-01-01T00:00:00', -5, 1e300, {}, true, '']],
    [['org'], [{}, [], true]],
    [['prompt'], ['x', 5]],
    [['prompt', 'messages'], [5, {}, true, [], [{}], [{ role: '' }], [null]]],
    [['prompt', 'model'], [5, {}, true]],
    [['prompt', 'params'], [[], 'x', 5, { max_tokens: -1 }, { temperature: 'hot' }, { stream: 'yes' }]],
  ],
  ids: [['id']],
  hugeTargets: [['ts'], ['prompt'], ['prompt', 'params']],
  textPath: ['prompt', 'messages', 0, 'content'],
  loosePaths: [[], ['meta'], ['prompt'], ['prompt', 'params']],
  invalidReason: /^(schema_invalid|mapping_missing|mapping_invalid): ./,
};

const responseWrongTypes: JsonDecoderSpec['wrongTypes'] = [
  [['schemaVersion'], [2, '1']],
  [['requestId'], [5, [], {}]],
  [['arm'], [5, '', null]],
  [['occurredAt'], [-1, 1.5, 'now']],
  [['endpoint'], ['x', null]],
  [['endpoint', 'name'], [5, null]],
  [['endpoint', 'model'], [5, {}]],
  [['outcome'], ['fine', 1, null]],
  [['status'], ['200', 1.5]],
  [['error'], ['oops', 5]],
  [['response'], ['x', []]],
  [['response', 'choices'], ['x', {}, [{}], [null]]],
  [['response', 'choices', 0, 'content'], [5, {}]],
  [['response', 'choices', 0, 'index'], [-1, 'zero']],
  [['response', 'choices', 0, 'toolCalls'], ['x', [{}], [5]]],
  [['usage', 'prompt'], [-1, 'many', 1.5]],
  [['usage', 'source'], ['guess', 1]],
  [['timing'], [null, 'x']],
  [['timing', 'e2eMs'], [-5, 'fast', null]],
  [['timing', 'ttftMs'], [-1, 'x']],
  [['timing', 'itl'], ['x', { n: -1 }]],
  [['streamed'], ['yes', 1, null]],
  [['configHash'], [5, {}]],
];

/** A successful answer of about 200 tokens. */
function answer(rng: Rng): string {
  return rng.words(rng.int(120, 180));
}

/** Stable answers on the stable responses topic (the join's first input). */
export const stableResponseSpec: JsonDecoderSpec = {
  valid: (rng: Rng, requestId: string) => plain(responseEvent(requestId, 'stable', { content: answer(rng), e2eMs: rng.int(20, 2_000) })),
  wrongTypes: responseWrongTypes,
  ids: [['requestId'], ['arm']],
  hugeTargets: [['occurredAt'], ['status'], ['usage'], ['timing'], ['streamed'], ['endpoint']],
  textPath: ['response', 'choices', 0, 'content'],
  loosePaths: [[], ['timing'], ['endpoint']],
  invalidReason: SCHEMA_INVALID,
};

/** Candidate answers on the candidate responses topic (the join's second input), as replay publishes them. */
export function candidateResponseSpec(experimentId: string, arm: string): JsonDecoderSpec {
  return {
    valid: (rng: Rng, requestId: string) =>
      plain({
        ...responseEvent(requestId, arm, { experimentId, content: answer(rng), e2eMs: rng.int(20, 2_000) }),
        request: { model: 'sim', stream: true, messages: [{ role: 'user', content: `${rng.words(rng.int(3, 40))}?` }] },
        configHash: 'c0ffee',
      }),
    wrongTypes: [...responseWrongTypes, [['experimentId'], [5, '', []]], [['request', 'messages'], [[], 'hi']]],
    // Without experimentId a candidate answer cannot be paired: the join dead-letters it by name.
    ids: [['requestId'], ['arm'], ['experimentId']],
    hugeTargets: [['occurredAt'], ['status'], ['usage'], ['timing'], ['streamed'], ['request', 'messages']],
    textPath: ['response', 'choices', 0, 'content'],
    loosePaths: [[], ['timing'], ['request']],
    invalidReason: SCHEMA_INVALID,
  };
}
