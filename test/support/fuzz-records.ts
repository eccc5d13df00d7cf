/**
 * Seeded generation of hostile Kafka records for `test/fuzz.test.ts`: invalid JSON, wrong types,
 * missing ids, huge strings, deep nesting, invalid UTF-8 (and, for Confluent-framed topics, see
 * fuzz-registry-records.ts), interleaved with valid events. Every record says what must become
 * of it: a dead letter whose reason matches a pattern, or the normal outcome of a valid event.
 *
 * `FUZZ_SEED` reproduces a run (the seed is printed), `FUZZ_RECORDS` sets the hostile records
 * per consumed topic (default 10,000).
 */
import { randomInt } from 'node:crypto';
import type { Kafka } from 'kafkajs';

export interface FuzzSettings {
  seed: number;
  /** Hostile records per consumed topic. */
  records: number;
  /** One valid event per this many hostile records. */
  hostilePerValid: number;
}

export const DEFAULT_FUZZ_RECORDS = 10_000;

/** Reads `FUZZ_SEED` and `FUZZ_RECORDS`; a run without a seed draws one. */
export function fuzzSettings(env: Record<string, string | undefined> = process.env): FuzzSettings {
  const seed = env.FUZZ_SEED === undefined || env.FUZZ_SEED === '' ? randomInt(2 ** 31) : Number(env.FUZZ_SEED);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`FUZZ_SEED must be an integer in [0, 2^32) (got ${env.FUZZ_SEED})`);
  const records = env.FUZZ_RECORDS === undefined || env.FUZZ_RECORDS === '' ? DEFAULT_FUZZ_RECORDS : Number(env.FUZZ_RECORDS);
  if (!Number.isInteger(records) || records < 1) throw new Error(`FUZZ_RECORDS must be an integer >= 1 (got ${env.FUZZ_RECORDS})`);
  return { seed, records, hostilePerValid: 20 };
}

/** mulberry32: small, fast and good enough to pick test cases; the same seed gives the same records. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** An independent stream for one part of the test, so adding a part does not reshuffle the others. */
  fork(label: string): Rng {
    let hash = this.#state ^ 0x9e3779b9;
    for (let index = 0; index < label.length; index++) hash = Math.imul(hash ^ label.charCodeAt(index), 0x01000193);
    return new Rng(hash >>> 0);
  }

  /** In [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in [min, max). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min));
  }

  /** Log-uniform in [min, max): many small values, a few large ones. */
  logInt(min: number, max: number): number {
    return Math.floor(Math.exp(Math.log(min) + this.next() * (Math.log(max) - Math.log(min))));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** Picks by weight: `[[weight, value], …]`. */
  weighted<T>(entries: ReadonlyArray<readonly [number, T]>): T {
    const total = entries.reduce((sum, [weight]) => sum + weight, 0);
    let roll = this.next() * total;
    for (const [weight, value] of entries) {
      roll -= weight;
      if (roll < 0) return value;
    }
    const last = entries.at(-1);
    if (last === undefined) throw new Error('weighted pick from an empty list');
    return last[1];
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let index = 0; index < length; index++) out[index] = Math.floor(this.next() * 256);
    return out;
  }

  /** Printable ASCII without quotes or backslashes. */
  ascii(length: number): string {
    let out = '';
    for (let index = 0; index < length; index++) {
      const code = 32 + Math.floor(this.next() * 95);
      out += code === 34 || code === 92 ? 'x' : String.fromCharCode(code);
    }
    return out;
  }

  words(count: number): string {
    const out: string[] = [];
    for (let index = 0; index < count; index++) out.push(this.pick(WORDS));
    return out.join(' ');
  }
}

const WORDS = ['the', 'model', 'answer', 'queue', 'token', 'latency', 'shadow', 'replay', 'kafka', 'partition', 'offset', 'stream', 'of', 'and', 'is', 'a', 'with', 'request', 'candidate', 'stable'];

/** What must become of a record. */
export type Expectation = { deadLetter: RegExp } | { valid: string };

/** A record as produced, and what must become of it. */
export interface FuzzRecord {
  /** Position in the stream; sent as the `fuzz-id` header, which a dead letter keeps. */
  id: number;
  /** `class/variant`, for the summary and failure messages. */
  kind: string;
  partition: number;
  key: Buffer | string | null;
  value: Buffer | null;
  headers: Record<string, string | Buffer>;
  expect: Expectation;
}

export const FUZZ_ID_HEADER = 'fuzz-id';

/** A hostile record before it gets its place in the stream. */
export interface Hostile {
  kind: string;
  value: Buffer | null;
  reason: RegExp;
}

/** A valid event before it gets its place in the stream. */
export interface Valid {
  kind: string;
  requestId: string;
  value: Buffer;
}

/**
 * `hostile` hostile records with the valid ones spread among them at random places, each on a
 * random partition, some with hostile keys and headers (a forged `x-dlq-reason` must be
 * replaced, binary keys and header values kept byte for byte).
 */
export function buildStream(rng: Rng, options: { hostile: number; valid: readonly Valid[]; partitions: number; makeHostile: (rng: Rng, index: number) => Hostile }): FuzzRecord[] {
  const validAt = new Map<number, Valid[]>();
  for (const valid of options.valid) {
    const at = rng.int(0, options.hostile + 1);
    validAt.set(at, [...(validAt.get(at) ?? []), valid]);
  }
  const records: FuzzRecord[] = [];
  const push = (kind: string, value: Buffer | null, expect: Expectation, key: Buffer | string | null, headers: Record<string, string | Buffer>) => {
    const id = records.length;
    records.push({ id, kind, partition: rng.int(0, options.partitions), key, value, headers: { ...headers, [FUZZ_ID_HEADER]: String(id) }, expect });
  };
  for (let index = 0; index <= options.hostile; index++) {
    for (const valid of validAt.get(index) ?? []) push(valid.kind, valid.value, { valid: valid.requestId }, valid.requestId, {});
    if (index === options.hostile) break;
    const hostile = options.makeHostile(rng, index);
    push(hostile.kind, hostile.value, { deadLetter: hostile.reason }, hostileKey(rng, index), hostileHeaders(rng));
  }
  return records;
}

function hostileKey(rng: Rng, index: number): Buffer | string | null {
  return rng.weighted<() => Buffer | string | null>([
    [80, () => `h-${index}`],
    [10, () => null],
    [5, () => rng.bytes(rng.int(1, 64))],
    [5, () => 'k'.repeat(rng.logInt(256, 16_384))],
  ])();
}

function hostileHeaders(rng: Rng): Record<string, string | Buffer> {
  return rng.weighted<() => Record<string, string | Buffer>>([
    [85, () => ({})],
    [5, () => ({ 'x-dlq-reason': 'forged', 'x-dlq-stage': 'forged', 'x-dlq-offset': '-1' })],
    [5, () => ({ trace: rng.bytes(rng.int(1, 32)) })],
    [5, () => ({ 'content-type': 'application/json', [`h-${rng.ascii(8)}`]: rng.ascii(rng.int(0, 200)) })],
  ])();
}

// ---------------------------------------------------------------------------------------------
// JSON documents.

export type Path = ReadonlyArray<string | number>;
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** What a JSON decoder reads: how to build a valid document and where it can be broken. */
export interface JsonDecoderSpec {
  /** A valid document with this request id. */
  valid: (rng: Rng, requestId: string) => JsonObject;
  /** Fields and values of a wrong type or out of range, each of which makes the document invalid. */
  wrongTypes: ReadonlyArray<readonly [Path, readonly Json[]]>;
  /** Identifiers whose absence (or emptiness) makes the document invalid. */
  ids: readonly Path[];
  /** A string field of every valid document. */
  textPath: Path;
  /** Fields where a huge string of digits is invalid (where a number, an object or an array belongs). */
  hugeTargets: readonly Path[];
  /** Objects of a valid document where an unknown field is accepted (kept or ignored). */
  loosePaths: readonly Path[];
  /** The reason of a document that parses but is not an event (or does not map to one). */
  invalidReason: RegExp;
  /** Hostile variants only this decoder has, with their weight. */
  extra?: ReadonlyArray<readonly [number, (rng: Rng, index: number) => Hostile]>;
}

const REASON = {
  empty: /^empty_value: /,
  invalidJson: /^invalid_json: ./,
  invalidUtf8: /^invalid_utf8: ./,
  tooDeep: /^nesting_too_deep: ./,
  bytes: /^(invalid_utf8|invalid_json|empty_value): ./,
} as const;

/** Byte sequences that are not UTF-8: bad leads, lone continuations, overlongs, surrogates, > U+10FFFF, cut sequences. */
export const INVALID_UTF8: readonly number[][] = [[0xff], [0xfe], [0x80], [0xbf], [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc3]];

const MARK = '__fuzz_mark__';

/** A hostile record for a JSON decoder, of a class picked by weight. */
export function hostileJson(rng: Rng, index: number, spec: JsonDecoderSpec): Hostile {
  const base = () => spec.valid(rng, `h-${index}`);
  const text = (doc: JsonObject) => JSON.stringify(doc);
  const json = (kind: string, value: string | Buffer, reason: RegExp): Hostile => ({ kind, value: typeof value === 'string' ? Buffer.from(value) : value, reason });
  const classes: Array<readonly [number, () => Hostile]> = [
    [6, () => {
      const full = text(base());
      return json('invalid-json/truncated', full.slice(0, rng.int(1, full.length)), REASON.invalidJson);
    }],
    [3, () => json('invalid-json/trailing', text(base()) + rng.pick([',', '}', ']', 'x', '{}', '"']), REASON.invalidJson)],
    [2, () => json('invalid-json/control-char', text(withValue(base(), spec.textPath, MARK)).replace(MARK, `a${String.fromCharCode(rng.int(0, 32))}b`), REASON.invalidJson)],
    [2, () => json('invalid-json/single-quotes', text(base()).replaceAll('"', "'"), REASON.invalidJson)],
    [2, () => json('invalid-json/literal', text(withValue(base(), spec.textPath, MARK)).replace(`"${MARK}"`, rng.pick(['NaN', 'Infinity', '-Infinity', 'undefined', '0x1F', '01', '.5', '+1'])), REASON.invalidJson)],
    [1, () => json('invalid-json/comment', `// ${rng.ascii(10)}\n${text(base())}`, REASON.invalidJson)],
    [1, () => json('invalid-json/bom', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text(base()))]), REASON.invalidJson)],
    [1, () => json('invalid-json/whitespace', ' \n\t'.repeat(rng.int(1, 10)), REASON.invalidJson)],
    [3, () => json('invalid-json/garbage', `#${rng.ascii(rng.int(0, 300))}`, REASON.invalidJson)],
    [5, () => json('bytes/random', randomNonJson(rng), REASON.bytes)],
    [2, () => ({ kind: 'empty', value: rng.chance(0.5) ? null : Buffer.alloc(0), reason: REASON.empty })],
    [25, () => {
      const [path, values] = rng.pick(spec.wrongTypes);
      return json(`wrong-type/${path.join('.')}`, text(withValue(base(), path, rng.pick(values))), spec.invalidReason);
    }],
    [4, () => json('wrong-type/root', rng.pick(['null', '[]', '42', '-0.5', '"event"', 'true', '{}', '[{}]']), spec.invalidReason)],
    [10, () => {
      const path = rng.pick(spec.ids);
      const how = rng.pick(['deleted', 'empty', 'null'] as const);
      const doc = how === 'deleted' ? withoutValue(base(), path) : withValue(base(), path, how === 'empty' ? '' : null);
      return json(`missing-id/${path.join('.')}/${how}`, text(doc), spec.invalidReason);
    }],
    [0.7, () => {
      const size = rng.logInt(16_384, 900_000);
      const variant = rng.pick(['id', 'wrong-type', 'garbage', 'root-string'] as const);
      if (variant === 'garbage') return json('huge/garbage', `#${'x'.repeat(size)}`, REASON.invalidJson);
      if (variant === 'root-string') return json('huge/root-string', JSON.stringify('s'.repeat(size)), spec.invalidReason);
      // An id longer than any accepted; a string of digits where a number or an object belongs.
      const [path, huge] = variant === 'id' ? [rng.pick(spec.ids), 'i'.repeat(size)] : [rng.pick(spec.hugeTargets), '9'.repeat(size)];
      return json(`huge/${variant}/${path.join('.')}`, text(withValue(base(), path, huge)), spec.invalidReason);
    }],
    [8, () => {
      // Nested deeper than any event may be: as the whole value, in an unknown field, or where a string belongs.
      const depth = rng.logInt(150, 10_000);
      const open = rng.chance(0.5);
      const nested = open ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
      const variant = rng.pick(['root', 'unknown-field', 'text-field'] as const);
      if (variant === 'root') return json('deep/root', nested, REASON.tooDeep);
      const doc = variant === 'unknown-field' ? withValue(base(), [...rng.pick(spec.loosePaths), 'extra'], MARK) : withValue(base(), spec.textPath, MARK);
      return json(`deep/${variant}`, text(doc).replace(`"${MARK}"`, nested), REASON.tooDeep);
    }],
    [10, () => {
      // Valid in every other way: one invalid sequence inside a string value or a key.
      const inKey = rng.chance(0.2);
      const doc = inKey ? withValue(base(), [...rng.pick(spec.loosePaths), MARK], 'x') : withValue(base(), spec.textPath, `${rng.words(3)} ${MARK} ${rng.words(2)}`);
      const bytes = Buffer.from(text(doc));
      const at = bytes.indexOf(MARK);
      const bad = Buffer.from(rng.pick(INVALID_UTF8));
      return json(`utf8/${inKey ? 'key' : 'value'}`, Buffer.concat([bytes.subarray(0, at), Buffer.from('a'), bad, Buffer.from('b'), bytes.subarray(at + MARK.length)]), REASON.invalidUtf8);
    }],
    ...(spec.extra ?? []).map(([weight, make]) => [weight, () => make(rng, index)] as const),
  ];
  return rng.weighted(classes)();
}

/** Random bytes that cannot be JSON: the first one starts no JSON value (and is not whitespace). */
export function randomNonJson(rng: Rng): Buffer {
  const bytes = rng.bytes(rng.int(1, 600));
  if ('{["-0123456789tfn \t\r\n'.includes(String.fromCharCode(bytes[0] ?? 0))) bytes[0] = 0x23;
  return bytes;
}

/**
 * A valid document in one of several shapes a reader must accept: plain, with unknown fields
 * (some moderately nested), with non-ASCII text (emoji, CJK, RTL, U+2028, an escaped lone
 * surrogate, a literal U+FFFD), or with a long text.
 */
export function validJson(rng: Rng, requestId: string, spec: JsonDecoderSpec): Valid {
  const doc = spec.valid(rng, requestId);
  const variant = rng.weighted<string>([
    [50, 'plain'],
    [20, 'unknown-fields'],
    [20, 'unicode'],
    [8, 'nested'],
    [2, 'long-text'],
  ]);
  let value = JSON.stringify(doc);
  if (variant === 'unknown-fields') value = JSON.stringify(withValue(doc, [...rng.pick(spec.loosePaths), 'addedLater'], { list: [1, 'two', { three: [true, null] }], note: rng.words(5) }));
  if (variant === 'unicode') value = JSON.stringify(withValue(doc, spec.textPath, `${rng.pick(['Grüße 👋🏽', '你好，世界', 'مرحبا بالعالم', 'e\u0301\u0301 combining', 'line\u2028sep', 'lone \ud800 surrogate', 'kept \ufffd replacement'])} ${rng.words(4)}`));
  if (variant === 'nested') {
    const depth = rng.int(2, 40);
    value = JSON.stringify(withValue(doc, [...rng.pick(spec.loosePaths), 'nested'], MARK)).replace(`"${MARK}"`, `${'['.repeat(depth)}1${']'.repeat(depth)}`);
  }
  if (variant === 'long-text') value = JSON.stringify(withValue(doc, spec.textPath, rng.words(rng.int(2_000, 8_000))));
  return { kind: `valid/${variant}`, requestId, value: Buffer.from(value) };
}

/** A copy of `doc` with `value` at `path` (objects and arrays on the way are created). */
export function withValue(doc: JsonObject, path: Path, value: Json): JsonObject {
  const copy = structuredClone(doc);
  let at: Json = copy;
  for (const [index, step] of path.entries()) {
    if (typeof at !== 'object' || at === null) throw new Error(`withValue: ${path.join('.')} goes through a scalar`);
    const container = at as Record<string | number, Json>;
    if (index === path.length - 1) {
      container[step] = value;
      break;
    }
    container[step] ??= typeof path[index + 1] === 'number' ? [] : {};
    at = container[step];
  }
  return copy;
}

export function withoutValue(doc: JsonObject, path: Path): JsonObject {
  const copy = structuredClone(doc);
  const parent = valueAt(copy, path.slice(0, -1));
  const last = path.at(-1);
  if (typeof parent === 'object' && parent !== null && last !== undefined) {
    if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1);
    else delete (parent as Record<string, Json>)[String(last)];
  }
  return copy;
}

function valueAt(doc: Json, path: Path): Json | undefined {
  let at: Json | undefined = doc;
  for (const step of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string | number, Json>)[step];
  }
  return at;
}

// ---------------------------------------------------------------------------------------------
// Producing.

/** Below the broker's 1 MiB `message.max.bytes` per partition batch, with room for the record overhead. */
const BATCH_BYTES = 960 * 1024;

/**
 * Produces the records in order, in large batches (one record batch per partition must stay
 * under the broker's limit), with an idempotent producer so each record lands exactly once at
 * the offset `expectedOffsets` predicts. Returns the offset of each record by id.
 */
export async function produceRecords(kafka: Kafka, topic: string, records: readonly FuzzRecord[]): Promise<Map<number, string>> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const offsets = new Map<number, string>();
  const next = new Map<number, number>();
  try {
    let batch: FuzzRecord[] = [];
    const bytes = new Map<number, number>();
    const flush = async () => {
      if (batch.length === 0) return;
      await producer.send({ topic, acks: -1, messages: batch.map((record) => ({ partition: record.partition, key: record.key, value: record.value, headers: record.headers })) });
      batch = [];
      bytes.clear();
    };
    for (const record of records) {
      const size = recordSize(record);
      if ((bytes.get(record.partition) ?? 0) + size > BATCH_BYTES || batch.length >= 5_000) await flush();
      batch.push(record);
      bytes.set(record.partition, (bytes.get(record.partition) ?? 0) + size);
      const offset = next.get(record.partition) ?? 0;
      offsets.set(record.id, String(offset));
      next.set(record.partition, offset + 1);
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
  return offsets;
}

function recordSize(record: FuzzRecord): number {
  let size = 64 + (record.value?.length ?? 0) + (record.key === null ? 0 : Buffer.byteLength(record.key));
  for (const [name, value] of Object.entries(record.headers)) size += name.length + Buffer.byteLength(value) + 8;
  return size;
}

/** Records per partition the stream puts in the topic (it starts empty). */
export function partitionCounts(records: readonly FuzzRecord[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const record of records) counts.set(record.partition, (counts.get(record.partition) ?? 0) + 1);
  return counts;
}

/** `{ class: count }` of the hostile records, for the test's diagnostics. */
export function kindSummary(records: readonly FuzzRecord[]): Record<string, number> {
  const summary: Record<string, number> = {};
  for (const record of records) {
    const kind = record.kind.split('/')[0] ?? record.kind;
    summary[kind] = (summary[kind] ?? 0) + 1;
  }
  return summary;
}
