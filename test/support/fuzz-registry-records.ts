/**
 * Hostile and valid records in the Confluent wire format (magic byte 0, a 4-byte big-endian
 * schema id, then an Avro or JSON payload) for the schema-registry input adapter: an LLM
 * gateway's combined log of request and answer, as in test/input-adapters.test.ts, registered
 * both as Avro and as JSON Schema and read through one field mapping.
 */
import avsc from 'avsc';
import { INVALID_UTF8, type Hostile, type Rng, type Valid } from './fuzz-records.js';

export interface RegistryIds {
  avro: number;
  json: number;
}

/** The Avro schema of the log; a unique namespace keeps each test's schema its own (Apicurio ids are content ids). */
export function llmLogAvroSchema(namespace: string) {
  return {
    type: 'record',
    name: 'LlmLog',
    namespace,
    fields: [
      { name: 'id', type: 'string' },
      { name: 'ts', type: 'long' },
      { name: 'org', type: ['null', 'string'], default: null },
      {
        name: 'request',
        type: {
          type: 'record',
          name: 'Request',
          fields: [
            { name: 'model', type: 'string' },
            { name: 'messages', type: { type: 'array', items: { type: 'record', name: 'Message', fields: [{ name: 'role', type: 'string' }, { name: 'content', type: 'string' }] } } },
            { name: 'params', type: { type: 'map', values: 'double' } },
          ],
        },
      },
      { name: 'response', type: { type: 'record', name: 'Response', fields: [{ name: 'text', type: ['null', 'string'], default: null }, { name: 'finish_reason', type: ['null', 'string'], default: null }] } },
      { name: 'usage', type: { type: 'record', name: 'Usage', fields: [{ name: 'in', type: 'int' }, { name: 'out', type: 'int' }] } },
      { name: 'latency_ms', type: 'double' },
      { name: 'ttft_ms', type: ['null', 'double'], default: null },
      { name: 'status', type: 'int' },
    ],
  };
}

/** The same log as JSON Schema: loose on purpose, so the mapping sees what the schema lets through. */
export function llmLogJsonSchema(title: string) {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title,
    type: 'object',
    required: ['id', 'ts', 'request'],
    properties: { id: { type: 'string' }, ts: { type: 'integer' }, request: { type: 'object' } },
  };
}

/** The mapping replay reads both encodings with (`experiment.input.mapping`). */
export const LLM_LOG_MAPPING = {
  requestId: '/id',
  occurredAt: '/ts',
  occurredAtUnit: 'ms',
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
} as const;

interface LlmLog {
  id: string;
  ts: number;
  org: string | null;
  request: { model: string; messages: Array<{ role: string; content: string }>; params: Record<string, number> };
  response: { text: string | null; finish_reason: string | null };
  usage: { in: number; out: number };
  latency_ms: number;
  ttft_ms: number | null;
  status: number;
}

const MARK = '__fuzz_mark__';

export function frame(schemaId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, payload]);
}

/** Zig-zag varint, as Avro writes int and long. */
function avroLong(value: number): Buffer {
  const out: number[] = [];
  let zigzag = value >= 0 ? value * 2 : -value * 2 - 1;
  while (zigzag >= 128) {
    out.push((zigzag % 128) | 0x80);
    zigzag = Math.floor(zigzag / 128);
  }
  out.push(zigzag);
  return Buffer.from(out);
}

function avroString(text: string): Buffer {
  const bytes = Buffer.from(text);
  return Buffer.concat([avroLong(bytes.length), bytes]);
}

export class RegistryRecords {
  readonly #ids: RegistryIds;
  readonly #avro: avsc.Type;

  constructor(ids: RegistryIds, namespace: string) {
    this.#ids = ids;
    this.#avro = avsc.Type.forSchema(llmLogAvroSchema(namespace) as avsc.Schema);
  }

  #log(rng: Rng, id: string): LlmLog {
    const failed = rng.chance(0.15);
    const words = rng.int(20, 160);
    return {
      id,
      ts: Date.now() - rng.int(0, 86_400_000),
      org: rng.chance(0.3) ? null : rng.pick(['acme', 'globex', 'initech']),
      request: { model: 'sim', messages: [{ role: 'user', content: `${rng.words(rng.int(3, 30))}?` }], params: rng.chance(0.5) ? {} : { temperature: rng.int(0, 10) / 10, max_tokens: rng.int(16, 512) } },
      response: failed ? { text: null, finish_reason: null } : { text: rng.words(words), finish_reason: 'stop' },
      usage: { in: rng.int(5, 200), out: failed ? 0 : words },
      latency_ms: rng.int(50, 5_000),
      ttft_ms: rng.chance(0.3) ? null : rng.int(10, 50),
      status: failed ? rng.pick([429, 500, 503]) : 200,
    };
  }

  #avroFrame(log: LlmLog): Buffer {
    return frame(this.#ids.avro, this.#avro.toBuffer(log));
  }

  #jsonFrame(log: LlmLog | Record<string, unknown>): Buffer {
    return frame(this.#ids.json, Buffer.from(JSON.stringify(log)));
  }

  /** A valid combined log, Avro or JSON Schema, in one of several shapes. */
  valid(rng: Rng, requestId: string): Valid {
    const log = this.#log(rng, requestId);
    const variant = rng.weighted<string>([
      [70, 'plain'],
      [25, 'unicode'],
      [5, 'long-text'],
    ]);
    const first = log.request.messages[0];
    // A literal U+FFFD is text like any other and must not pass for replaced bytes.
    if (variant === 'unicode' && first !== undefined) first.content = `${rng.pick(['Grüße 👋🏽', '你好', 'مرحبا', 'kept \ufffd replacement', 'line\u2028sep'])} ${rng.words(3)}`;
    if (variant === 'long-text' && log.response.text !== null) log.response.text = rng.words(rng.int(2_000, 8_000));
    const avro = rng.chance(0.5);
    return { kind: `valid/${avro ? 'avro' : 'json'}-${variant}`, requestId, value: avro ? this.#avroFrame(log) : this.#jsonFrame(log) };
  }

  /** A hostile record of a class picked by weight. */
  hostile(rng: Rng, index: number): Hostile {
    const ids = this.#ids;
    const log = () => this.#log(rng, `h-${index}`);
    const avroPayload = () => this.#avro.toBuffer(log());
    const record = (kind: string, value: Buffer | null, reason: RegExp): Hostile => ({ kind, value, reason });
    const avroReason = new RegExp(`^registry_decode: AVRO schema ${ids.avro}: .`);
    const jsonReason = new RegExp(`^registry_decode: JSON schema ${ids.json}: .`);
    const mappingReason = /^(mapping_missing|mapping_invalid|schema_invalid): ./;
    const classes: Array<readonly [number, () => Hostile]> = [
      [6, () => {
        const magic = rng.int(1, 256);
        const rest = rng.chance(0.5) ? Buffer.from(JSON.stringify(log())).subarray(1) : rng.bytes(rng.int(0, 200));
        return record('frame/wrong-magic', Buffer.concat([Buffer.from([magic]), rest]), /^not_confluent_framed: magic byte 0x[0-9a-f]{2}, expected 0x00/);
      }],
      [2, () => record('frame/plain-json', Buffer.from(JSON.stringify(log())), /^not_confluent_framed: magic byte 0x7b/)],
      [2, () => record('frame/empty', rng.chance(0.5) ? null : Buffer.alloc(0), /^empty_value: /)],
      [3, () => record('frame/short', Buffer.concat([Buffer.from([0]), rng.bytes(rng.int(0, 4))]), /^truncated_frame: [1-4] bytes/)],
      [3, () => {
        const id = rng.chance(0.3) ? 0 : -rng.int(1, 2 ** 31);
        return record('frame/bad-id', frame(id, avroPayload()), new RegExp(`^registry: invalid schema id ${id} in the frame$`));
      }],
      // Ids far above any the registry hands out (Apicurio counts up from 1).
      [8, () => {
        const id = rng.int(1_000_000_000, 2 ** 31 - 1);
        return record('frame/unknown-id', frame(id, avroPayload()), new RegExp(`^registry: unknown schema id ${id}$`));
      }],
      [6, () => {
        const payload = avroPayload();
        return record('avro/truncated', frame(ids.avro, payload.subarray(0, rng.int(0, payload.length))), avroReason);
      }],
      [4, () => record('avro/trailing', frame(ids.avro, Buffer.concat([avroPayload(), rng.bytes(rng.int(1, 50))])), new RegExp(`^registry_decode: AVRO schema ${ids.avro}: trailing data$`))],
      [6, () => {
        // Up to the messages array, whose block then claims far more items than the bytes that follow.
        const count = rng.logInt(1_000_000, 4_000_000_000);
        const prefix = [avroString(`h-${index}`), avroLong(Date.now()), avroLong(1), avroString('acme'), avroString('sim'), avroLong(rng.chance(0.5) ? count : -count)];
        return record('avro/huge-block-count', frame(ids.avro, Buffer.concat([...prefix, rng.bytes(rng.int(0, 20))])), new RegExp(`^registry_decode: AVRO schema ${ids.avro}: an array or map block claims \\d+ items`));
      }],
      [7, () => {
        // Same length as the marker, so the Avro string keeps its length prefix and only its bytes are wrong.
        const bad = Buffer.from(rng.pick(INVALID_UTF8));
        const value = log();
        const first = value.request.messages[0];
        if (first !== undefined) first.content = `${rng.words(2)} ${MARK}`;
        const payload = this.#avro.toBuffer(value);
        const at = payload.indexOf(MARK);
        const replacement = Buffer.concat([Buffer.from('a'), bad, Buffer.from('b'.repeat(MARK.length - 1 - bad.length))]);
        replacement.copy(payload, at);
        return record('avro/invalid-utf8', frame(ids.avro, payload), new RegExp(`^invalid_utf8: AVRO schema ${ids.avro}: `));
      }],
      [8, () => {
        const [kind, broken] = this.#unmappable(rng, log());
        return record(`avro/unmappable-${kind}`, this.#avroFrame(broken), mappingReason);
      }],
      [5, () => {
        const text = JSON.stringify(log());
        return record('json/invalid-json', frame(ids.json, Buffer.from(text.slice(0, rng.int(0, text.length)))), jsonReason);
      }],
      [6, () => {
        const value = log();
        const first = value.request.messages[0];
        if (first !== undefined) first.content = `${rng.words(2)} ${MARK}`;
        const bytes = Buffer.from(JSON.stringify(value));
        const at = bytes.indexOf(MARK);
        const payload = Buffer.concat([bytes.subarray(0, at), Buffer.from(rng.pick(INVALID_UTF8)), bytes.subarray(at + MARK.length)]);
        return record('json/invalid-utf8', frame(ids.json, payload), new RegExp(`^invalid_utf8: JSON schema ${ids.json}: `));
      }],
      [6, () => {
        const depth = rng.logInt(150, 10_000);
        const nested = rng.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
        const text = JSON.stringify({ ...log(), extra: MARK }).replace(`"${MARK}"`, nested);
        return record('json/deep', frame(ids.json, Buffer.from(text)), new RegExp(`^nesting_too_deep: JSON schema ${ids.json}: `));
      }],
      [5, () => {
        const value: Record<string, unknown> = { ...log() };
        const field = rng.pick(['id', 'ts', 'request'] as const);
        value[field] = field === 'id' ? rng.int(0, 1_000) : field === 'ts' ? rng.pick(['yesterday', 1.5, null]) : rng.pick(['x', 5, [1]]);
        return record(`json/schema-invalid-${field}`, this.#jsonFrame(value), new RegExp(`^registry_decode: JSON schema ${ids.json}: payload does not match the schema: `));
      }],
      [7, () => {
        const [kind, broken] = this.#unmappable(rng, log());
        return record(`json/unmappable-${kind}`, this.#jsonFrame(broken), mappingReason);
      }],
    ];
    return rng.weighted(classes)();
  }

  /** A log that decodes but cannot be an event: a missing or oversized id, no messages, a time before 1970, a bad latency or status. */
  #unmappable(rng: Rng, log: LlmLog): [string, LlmLog] {
    const kind = rng.pick(['empty-id', 'long-id', 'huge-id', 'no-messages', 'empty-role', 'negative-ts', 'bad-latency', 'negative-status'] as const);
    switch (kind) {
      case 'empty-id':
        return [kind, { ...log, id: '' }];
      case 'long-id':
        return [kind, { ...log, id: 'i'.repeat(rng.int(257, 4_000)) }];
      case 'huge-id':
        return [kind, { ...log, id: 'i'.repeat(rng.logInt(16_384, 400_000)) }];
      case 'no-messages':
        return [kind, { ...log, request: { ...log.request, messages: [] } }];
      case 'empty-role':
        return [kind, { ...log, request: { ...log.request, messages: [{ role: '', content: 'hi' }] } }];
      case 'negative-ts':
        return [kind, { ...log, ts: -rng.int(1, 1_000_000) }];
      case 'bad-latency':
        return [kind, { ...log, latency_ms: rng.pick([-1, Number.NaN, Number.POSITIVE_INFINITY]) }];
      case 'negative-status':
        return [kind, { ...log, status: -rng.int(1, 600) }];
    }
  }
}
