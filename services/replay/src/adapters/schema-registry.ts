import { isUtf8 } from 'node:buffer';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { ConsumedRecord } from '@shadow-replay/platform';
import { MAX_NESTING_DEPTH, nestedDeeperThan, type FieldMapping } from '@shadow-replay/contracts';
import { avroBlockProblem } from './avro-guard.js';
import { InputAdapterError, InputAdapterErrorCode } from './errors.js';
import { FieldMapper } from './field-mapping.js';
import { isRecord } from './json-pointer.js';
import { adaptNativeObject } from './native.js';
import { AdaptReason, poison, type AdaptResult, type InputAdapter } from './types.js';

export interface SchemaRegistryAdapterOptions {
  /** Base of the Confluent-compatible API, e.g. `http://127.0.0.1:8081/apis/ccompat/v7` for Apicurio 3. */
  registryUrl: string;
  /** Applied to the decoded object; absent: the decoded object must be a native RequestEvent. */
  mapping?: FieldMapping | undefined;
  /** Deadline of one schema lookup, the client's own retries included. @defaultValue 10000 */
  timeoutMs?: number;
  /** HTTP basic credentials of the registry. */
  auth?: { username: string; password: string } | undefined;
}

type Poison = { ok: false; reason: string };
export type ConfluentFrame = { ok: true; schemaId: number; bytes: Buffer } | Poison;

/** Schema types this adapter decodes; Protobuf records (which add message indexes to the frame) are refused. */
const SUPPORTED_TYPES: readonly SchemaType[] = [SchemaType.AVRO, SchemaType.JSON];
/** Lookups of one schema within `timeoutMs`, each with an equal share of it. */
const LOOKUP_ATTEMPTS = 3;
/** How much longer than its requests' deadline one lookup attempt may take. */
const OUTER_MARGIN_MS = 250;
/** The registry client's message for a request that passed its deadline: `Timeout (3333ms)`. */
const REQUEST_TIMEOUT = /\bTimeout \(\d+ms\)/;
/** Confluent's error code for "schema not found" (Apicurio's ccompat API uses it too). */
const SCHEMA_NOT_FOUND = 40403;

/**
 * Checks the Confluent wire format without the registry: magic byte 0, a 4-byte big-endian
 * schema id, then the Avro or JSON payload.
 */
export function readConfluentFrame(value: Buffer | null): ConfluentFrame {
  if (value === null || value.length === 0) return poison(AdaptReason.emptyValue, 'the record has no value');
  const magic = value[0] ?? 0;
  if (magic !== 0) {
    const looksLikeJson = magic === 0x7b || magic === 0x5b;
    return poison(
      AdaptReason.notConfluentFramed,
      `magic byte 0x${magic.toString(16).padStart(2, '0')}, expected 0x00${looksLikeJson ? ' (the value looks like plain JSON: read this topic with kind "native" or "field-mapping")' : ''}`,
    );
  }
  if (value.length < 5) {
    return poison(AdaptReason.truncatedFrame, `${value.length} bytes; a Confluent frame is a 0x00 magic byte, a 4-byte schema id, then the payload`);
  }
  const schemaId = value.readInt32BE(1);
  if (schemaId <= 0) return poison(AdaptReason.registry, `invalid schema id ${schemaId} in the frame`);
  return { ok: true, schemaId, bytes: value };
}

/**
 * Records in the Confluent wire format (Avro or JSON Schema), decoded through a
 * Confluent-compatible schema registry, then read as native events or through a field mapping.
 *
 * Poison (a result, dead-lettered): no value, wrong magic byte, a frame shorter than 5 bytes,
 * a schema id the registry confirms it does not have (404 with error code 40403), a schema of
 * another type or that cannot be compiled, a payload that does not decode or validate, a decoded
 * object that does not fit. Infrastructure (a rejection with a retryable {@link InputAdapterError},
 * the record is retried): the registry unreachable, 5xx, 401/403, slower than `timeoutMs`, or a
 * 404 that is not "schema not found" (a wrong URL must not dead-letter the whole topic).
 * Schemas are cached by id for the life of the adapter (a schema id never changes meaning).
 */
export class SchemaRegistryAdapter implements InputAdapter {
  readonly kind = 'schema-registry';
  readonly #registry: SchemaRegistry;
  readonly #url: string;
  readonly #timeoutMs: number;
  readonly #authorization: string | undefined;
  readonly #mapper: FieldMapper | undefined;

  constructor(options: SchemaRegistryAdapterOptions) {
    this.#url = options.registryUrl.replace(/\/+$/, '');
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#authorization = options.auth === undefined ? undefined : `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
    this.#mapper = options.mapping === undefined ? undefined : new FieldMapper(options.mapping);
    this.#registry = new SchemaRegistry(
      {
        host: this.#url,
        clientId: 'shadow-replay',
        // Two quick retries inside the client; longer outages are the consumer's to retry.
        retry: { retries: 2, initialRetryTimeInSecs: 0.1, maxRetryTimeInSecs: 1 },
        // Each HTTP request ends at the attempt's deadline, its socket with it: an abandoned request
        // would otherwise hold a connection (and keep the process alive) until the registry's idle
        // timeout, 30 minutes for Apicurio.
        middlewares: [requestTimeout(this.#timeoutMs / LOOKUP_ATTEMPTS)],
        ...(options.auth === undefined ? {} : { auth: options.auth }),
      },
      // Registered schemas are not ours to lint: unknown keywords and formats are tolerated, and
      // every violation is reported with its path.
      { [SchemaType.JSON]: { strict: false, allErrors: true, logger: false, detailedErrorPaths: true } },
    );
  }

  async adapt(record: ConsumedRecord): Promise<AdaptResult> {
    const frame = readConfluentFrame(record.value);
    if (!frame.ok) return frame;
    const type = await this.#schemaType(frame.schemaId);
    if (typeof type !== 'string') return type;
    const payload = frame.bytes.subarray(5);
    if (type === SchemaType.JSON && !isUtf8(payload)) return poison(AdaptReason.invalidUtf8, `JSON schema ${frame.schemaId}: the payload is not valid UTF-8`);
    if (type === SchemaType.AVRO) {
      const problem = avroBlockProblem(this.#registry.cache.getSchema(frame.schemaId)?.schema, payload);
      if (problem !== undefined) return poison(AdaptReason.registryDecode, `AVRO schema ${frame.schemaId}: ${problem}`);
    }
    let decoded: unknown;
    try {
      decoded = await this.#registry.decode(frame.bytes);
    } catch (error) {
      // The schema is cached by now, so this is the payload; a registry error here is still infrastructure.
      if (isResponseError(error)) throw this.#unavailable(frame.schemaId, error);
      return poison(AdaptReason.registryDecode, `${type} schema ${frame.schemaId}: ${decodeProblem(error)}`);
    }
    // Checked before the recursive walks below and the JSON.stringify calls further down the pipeline.
    if (nestedDeeperThan(decoded, MAX_NESTING_DEPTH)) return poison(AdaptReason.nestingTooDeep, `${type} schema ${frame.schemaId}: objects and arrays nested more than ${MAX_NESTING_DEPTH} levels deep`);
    // avsc, like Avro's Java library, turns invalid UTF-8 in a string into U+FFFD without a word.
    if (type === SchemaType.AVRO && hasReplacedUtf8(decoded, payload)) return poison(AdaptReason.invalidUtf8, `AVRO schema ${frame.schemaId}: a string is not valid UTF-8`);
    const document = toPlainJson(decoded);
    return this.#mapper === undefined ? adaptNativeObject(document) : this.#mapper.map(document, record);
  }

  /** The schema's type once it is loaded and cached, or poison. Rejects when the registry is unavailable. */
  async #schemaType(schemaId: number): Promise<SchemaType | Poison> {
    try {
      await this.#lookup(schemaId);
    } catch (error) {
      if (error instanceof LookupTimeout) {
        throw new InputAdapterError(InputAdapterErrorCode.registryUnavailable, `schema registry ${this.#url}: no answer for schema id ${schemaId} within ${this.#timeoutMs} ms`);
      }
      if (isResponseError(error)) {
        // The client reports connection failures as status 400 too, and a 404 may be a wrong
        // base URL: only the registry's own "schema not found" makes the record poison.
        if (error.status !== 404) throw this.#unavailable(schemaId, error);
        await this.#assertSchemaNotFound(schemaId, error);
        return poison(AdaptReason.registry, `unknown schema id ${schemaId}`);
      }
      const message = error instanceof Error ? error.message : String(error);
      if (message === 'invalid schemaType') return poison(AdaptReason.unsupportedSchemaType, `schema id ${schemaId} has a schema type the client does not know`);
      return poison(AdaptReason.registry, `schema id ${schemaId} cannot be compiled: ${message}`);
    }
    const type = this.#registry.cache.getSchema(schemaId)?.type ?? SchemaType.UNKNOWN;
    if (SUPPORTED_TYPES.includes(type)) return type;
    return poison(AdaptReason.unsupportedSchemaType, `${type} (schema id ${schemaId}); this adapter reads Avro and JSON Schema records`);
  }

  /**
   * Loads a schema into the client's cache within `timeoutMs`. The client sets no deadline on
   * its requests, and a registry under load now and then never answers one (Apicurio did, about
   * once in a few thousand lookups): such a lookup is abandoned and sent again, so a lost request
   * costs a fraction of the deadline instead of the whole of it and a redone batch.
   */
  async #lookup(schemaId: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        // The requests end at the attempt's deadline; this outer one only bounds the client's own retries.
        await withTimeout(this.#registry.getSchema(schemaId), this.#timeoutMs / LOOKUP_ATTEMPTS + OUTER_MARGIN_MS);
        return;
      } catch (error) {
        const timedOut = error instanceof LookupTimeout || (isResponseError(error) && REQUEST_TIMEOUT.test(error.message));
        if (!timedOut) throw error;
        if (attempt >= LOOKUP_ATTEMPTS) throw new LookupTimeout();
      }
    }
  }

  /**
   * Asks the registry directly whether a 404 meant "no such schema" (Confluent error code 40403);
   * resolves only when it did, else rejects with a retryable error.
   */
  async #assertSchemaNotFound(schemaId: number, original: ResponseErrorLike): Promise<void> {
    let response: Response;
    try {
      response = await fetch(`${this.#url}/schemas/ids/${schemaId}`, {
        headers: { accept: 'application/vnd.schemaregistry.v1+json, application/json', ...(this.#authorization === undefined ? {} : { authorization: this.#authorization }) },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new InputAdapterError(InputAdapterErrorCode.registryUnavailable, `schema registry ${this.#url}: looking up schema id ${schemaId} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const body: unknown = await response.json().catch(() => undefined);
    if (response.status === 404 && isRecord(body) && body.error_code === SCHEMA_NOT_FOUND) return;
    throw new InputAdapterError(
      InputAdapterErrorCode.registryMisconfigured,
      `schema registry ${this.#url}: GET /schemas/ids/${schemaId} answered ${response.status}${isRecord(body) && body.error_code !== undefined ? ` (error_code ${JSON.stringify(body.error_code)})` : ''} after the client saw "${original.message}"; if this is not "schema not found" (40403), check that SCHEMA_REGISTRY_URL is the base of the Confluent-compatible API (Apicurio: …/apis/ccompat/v7)`,
      { cause: original },
    );
  }

  #unavailable(schemaId: number, error: ResponseErrorLike): InputAdapterError {
    const code = error.status === 401 || error.status === 403 || error.status === 404 ? InputAdapterErrorCode.registryMisconfigured : InputAdapterErrorCode.registryUnavailable;
    // The client reports network failures as status 400 with the socket error in the message.
    const what = error.status === 400 && /\bE[A-Z]{4,}\b/.test(error.message) ? 'unreachable' : `status ${error.status}`;
    return new InputAdapterError(code, `schema registry ${this.#url}: looking up schema id ${schemaId} failed (${what}): ${error.message}`, { cause: error });
  }
}

/** The HTTP error of the registry client (`ResponseError`, not exported by the package). */
interface ResponseErrorLike {
  name: string;
  message: string;
  status: number;
}

function isResponseError(error: unknown): error is ResponseErrorLike {
  return error instanceof Error && error.name === 'ResponseError' && typeof (error as Partial<ResponseErrorLike>).status === 'number';
}

class LookupTimeout extends Error {}

/** A registry client middleware giving every request a deadline (the client's HTTP gateway aborts it then). */
function requestTimeout(ms: number): NonNullable<ConstructorParameters<typeof SchemaRegistry>[0]['middlewares']>[number] {
  const timeout = Math.max(1, Math.round(ms));
  return () => ({ prepareRequest: (next) => next().then((request) => request.enhance({ timeout })) });
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LookupTimeout()), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why a payload did not decode: avsc's message, or the JSON Schema violations with their paths. */
function decodeProblem(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const paths = (error as { paths?: unknown }).paths;
  if (error.name === 'ConfluentSchemaRegistryValidationError' && Array.isArray(paths) && paths.length > 0) {
    const described = paths.slice(0, 5).map((entry: unknown) => {
      if (isRecord(entry)) return `${pathText(entry.path)} ${typeof entry.message === 'string' ? entry.message : 'is invalid'}`;
      return `${pathText(entry)} is invalid`;
    });
    return `payload does not match the schema: ${described.join('; ')}`;
  }
  return error.message;
}

function pathText(path: unknown): string {
  const text = Array.isArray(path) ? path.join('') : typeof path === 'string' ? path : '';
  return text === '' ? '(root)' : text;
}

/**
 * True when a decoded string holds U+FFFD that the payload does not: avsc put it there for
 * bytes that were not UTF-8 (Avro strings are raw UTF-8, so a real U+FFFD is in the payload
 * as EF BF BD with the rest of its string). Depth is bounded by the caller.
 */
function hasReplacedUtf8(value: unknown, payload: Buffer): boolean {
  if (typeof value === 'string') return value.includes('\uFFFD') && !payload.includes(Buffer.from(value, 'utf8'));
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return false;
  if (Array.isArray(value)) return value.some((item) => hasReplacedUtf8(item, payload));
  return Object.entries(value).some(([key, item]) => hasReplacedUtf8(key, payload) || hasReplacedUtf8(item, payload));
}

/**
 * Decoded values as plain JSON: Avro records become plain objects, `bytes`/`fixed` become base64
 * strings, 64-bit integers beyond 2^53 become decimal strings, Dates milliseconds.
 */
export function toPlainJson(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(toPlainJson);
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === 'object') {
    const plain: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(value)) if (entry !== undefined) plain[key] = toPlainJson(entry);
    return plain;
  }
  return value;
}
