import {
  RequestEventSchema,
  ResponseEventSchema,
  SECRET_HEADERS,
  decodeEvent,
  formatPath,
  type RequestEvent,
  type ResponseError,
  type ResponseEvent,
} from '@shadow-replay/contracts';
import { CallErrorCode, type ConsumedRecord } from '@shadow-replay/platform';
import { z } from 'zod';
import type { FieldMapping, StableMapping } from '@shadow-replay/contracts';
import { compilePointer, isRecord, resolvePointer, type JsonPointer } from './json-pointer.js';
import { describeType, toEpochMs, type TimeUnit } from './time.js';
import { AdaptReason, poison, type AdaptResult, type InputAdapter } from './types.js';

type Poison = { ok: false; reason: string };

/** Thrown inside the mapper only; `map` turns it into a result. */
class MappingProblem extends Error {
  constructor(readonly result: Poison) {
    super(result.reason);
    this.name = 'MappingProblem';
  }
}

type Pointers<T> = { [K in keyof T]: T[K] extends string | undefined ? JsonPointer | Extract<T[K], undefined> : T[K] };

interface CompiledStable extends Omit<Pointers<StableMapping>, 'endpointName'> {
  endpointName: string;
}

interface CompiledMapping extends Omit<Pointers<FieldMapping>, 'requestIdFallback' | 'occurredAtUnit' | 'defaultRoute' | 'stable'> {
  requestIdFallback: FieldMapping['requestIdFallback'];
  occurredAtUnit: TimeUnit;
  defaultRoute: string;
  stable: CompiledStable | undefined;
}

const POINTER_KEYS = ['requestId', 'occurredAt', 'route', 'tenant', 'conversationId', 'body', 'messages', 'model', 'params', 'headers'] as const;
const STABLE_POINTER_KEYS = [
  'content',
  'toolCalls',
  'finishReason',
  'model',
  'responseId',
  'promptTokens',
  'completionTokens',
  'totalTokens',
  'ttftMs',
  'status',
  'error',
  'streamed',
] as const;

/** Gateway-less records carry no sampling decision: everything on the tapped topic is offered. */
const TAPPED_SAMPLING = { rate: 1, key: null, sampled: true } as const;

/**
 * Maps foreign JSON (parsed, or decoded through the schema registry) to our events with the
 * JSON pointers of a {@link FieldMapping}. Pointers are compiled once, at construction.
 *
 * - requestId: a string, or an integer made a string; missing → `requestIdFallback`.
 * - occurredAt: see time.ts; not mapped → the Kafka record timestamp.
 * - body: `body` (an object), then `params` (null values dropped, as Avro optional fields decode
 *   to null), then `model`, then `messages` (a string becomes one user message).
 * - stable (combined records): outcome `error` when `status` ≥ 400 or `error` holds a value, else
 *   `ok`; timing.sentAt = occurredAt, e2eMs = latencyMs, ttftMs when mapped; tpotMs and output
 *   tokens/s are derived as (e2e − ttft) / (completion − 1) and completion / (e2e − ttft) when
 *   TTFT and usage are known (the last content chunk is taken to be the end of the answer);
 *   occurredAt of the answer = sentAt + e2eMs.
 */
export class FieldMapper {
  readonly #m: CompiledMapping;
  readonly #requestHints: Map<string, string>;
  readonly #stableHints: Map<string, string>;

  constructor(mapping: FieldMapping) {
    const m: Partial<Record<(typeof POINTER_KEYS)[number], JsonPointer>> = {};
    for (const key of POINTER_KEYS) {
      const source = mapping[key];
      if (source !== undefined) m[key] = compilePointer(source);
    }
    let stable: CompiledStable | undefined;
    if (mapping.stable !== undefined) {
      const s: Partial<Record<(typeof STABLE_POINTER_KEYS)[number], JsonPointer>> = {};
      for (const key of STABLE_POINTER_KEYS) {
        const source = mapping.stable[key];
        if (source !== undefined) s[key] = compilePointer(source);
      }
      stable = { ...s, latencyMs: compilePointer(mapping.stable.latencyMs), endpointName: mapping.stable.endpointName };
    }
    this.#m = { ...m, requestIdFallback: mapping.requestIdFallback, occurredAtUnit: mapping.occurredAtUnit, defaultRoute: mapping.defaultRoute, stable };
    this.#requestHints = hints({
      requestId: m.requestId,
      occurredAt: m.occurredAt,
      route: m.route,
      tenant: m.tenant,
      conversationId: m.conversationId,
      headers: m.headers,
      'body.messages': m.messages ?? m.body,
      'body.model': m.model ?? m.body,
      body: m.params ?? m.body,
    });
    this.#stableHints = hints({
      'response.choices.content': stable?.content,
      'response.choices.toolCalls': stable?.toolCalls,
      'response.choices.finishReason': stable?.finishReason,
      'response.model': stable?.model,
      'response.id': stable?.responseId,
      'endpoint.model': stable?.model,
      'usage.prompt': stable?.promptTokens,
      'usage.completion': stable?.completionTokens,
      'usage.total': stable?.totalTokens,
      'timing.e2eMs': stable?.latencyMs,
      'timing.ttftMs': stable?.ttftMs,
      status: stable?.status,
      error: stable?.error,
      streamed: stable?.streamed,
    });
  }

  /** Never throws: a record that does not fit the mapping is poison with a reason naming the pointer. */
  map(document: unknown, record: ConsumedRecord): AdaptResult {
    try {
      const request = this.#request(document, record);
      if (this.#m.stable === undefined) return { ok: true, value: { request } };
      return { ok: true, value: { request, stable: this.#stable(document, request, this.#m.stable) } };
    } catch (error) {
      if (error instanceof MappingProblem) return error.result;
      // The mapping is a pure function of the record: whatever failed will fail again, so it is poison.
      return poison(AdaptReason.mappingInvalid, `unexpected error while mapping: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #request(document: unknown, record: ConsumedRecord): RequestEvent {
    const m = this.#m;
    const tenant = optionalText(document, 'tenant', m.tenant);
    const conversationId = optionalText(document, 'conversationId', m.conversationId);
    const event = {
      schemaVersion: 1,
      requestId: this.#requestId(document, record),
      occurredAt: m.occurredAt === undefined ? kafkaTimestamp(record) : epochMs(document, 'occurredAt', m.occurredAt, m.occurredAtUnit),
      route: optionalText(document, 'route', m.route) ?? m.defaultRoute,
      ...(tenant === undefined ? {} : { tenant }),
      ...(conversationId === undefined ? {} : { conversationId }),
      sampling: TAPPED_SAMPLING,
      body: this.#body(document),
      headers: this.#headers(document),
    };
    const parsed = RequestEventSchema.safeParse(event);
    if (!parsed.success) throw new MappingProblem(poison(AdaptReason.schemaInvalid, describeWithHints(parsed.error.issues, this.#requestHints, '')));
    return parsed.data;
  }

  #requestId(document: unknown, record: ConsumedRecord): string {
    const pointer = this.#m.requestId;
    const value = pointer === undefined ? undefined : resolvePointer(document, pointer);
    if (pointer !== undefined && value !== undefined && value !== null && value !== '') {
      if (typeof value === 'string') return value;
      if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
      if (typeof value === 'bigint') return value.toString();
      return invalid('requestId', pointer, `expected a string or an integer, got ${describeType(value)}`);
    }
    const where = pointer === undefined ? 'not mapped' : `nothing at ${show(pointer)}`;
    switch (this.#m.requestIdFallback) {
      case 'offset':
        return `${record.topic}/${record.partition}/${record.offset}`;
      case 'key':
        if (record.key !== null && record.key.length > 0) return record.key.toString('utf8');
        throw new MappingProblem(poison(AdaptReason.mappingMissing, `requestId: ${where} and the record has no key (requestIdFallback "key")`));
      default:
        throw new MappingProblem(poison(AdaptReason.mappingMissing, `requestId: ${where} (set requestIdFallback to "key" or "offset" to accept records without one)`));
    }
  }

  #body(document: unknown): Record<string, unknown> {
    const m = this.#m;
    let body: Record<string, unknown> = {};
    if (m.body !== undefined) body = withoutNulls(requiredObject(document, 'body', m.body));
    if (m.params !== undefined) {
      const params = resolvePointer(document, m.params);
      if (params !== undefined && params !== null) {
        if (!isRecord(params)) invalid('params', m.params, `expected an object, got ${describeType(params)}`);
        Object.assign(body, withoutNulls(params));
      }
    }
    if (m.model !== undefined) {
      const model = resolvePointer(document, m.model);
      if (model !== undefined && model !== null) {
        if (typeof model !== 'string') invalid('model', m.model, `expected a string, got ${describeType(model)}`);
        body.model = model;
      }
    }
    if (m.messages !== undefined) {
      const messages = resolvePointer(document, m.messages);
      if (messages === undefined || messages === null) missing('messages', m.messages);
      if (typeof messages === 'string') body.messages = [{ role: 'user', content: messages }];
      else if (Array.isArray(messages)) body.messages = messages;
      else invalid('messages', m.messages, `expected an array of messages or a string, got ${describeType(messages)}`);
    } else if (body.messages === undefined && m.body !== undefined) {
      missing('messages', { source: `${m.body.source}/messages`, tokens: [...m.body.tokens, 'messages'] });
    }
    return body;
  }

  #headers(document: unknown): Record<string, string> {
    const pointer = this.#m.headers;
    const headers: Record<string, string> = {};
    if (pointer === undefined) return headers;
    const value = resolvePointer(document, pointer);
    if (value === undefined || value === null) return headers;
    if (!isRecord(value)) return invalid('headers', pointer, `expected an object of header names to values, got ${describeType(value)}`);
    for (const [name, text] of Object.entries(value)) {
      const lower = name.toLowerCase();
      if (typeof text === 'string' && !SECRET_HEADERS.includes(lower)) headers[lower] = text;
    }
    return headers;
  }

  #stable(document: unknown, request: RequestEvent, s: CompiledStable): ResponseEvent {
    const status = optionalInteger(document, 'stable.status', s.status);
    const errorMessage = s.error === undefined ? undefined : errorText(resolvePointer(document, s.error));
    const httpFailed = status !== null && status >= 400;
    const failed = httpFailed || errorMessage !== undefined;
    const e2eMs = duration(document, 'stable.latencyMs', s.latencyMs);
    if (e2eMs === null) return missing('stable.latencyMs', s.latencyMs);
    const ttftMs = s.ttftMs === undefined ? null : duration(document, 'stable.ttftMs', s.ttftMs);

    // Content null is an answer (e.g. beside tool calls); content that does not resolve is none.
    let content: string | null | undefined;
    if (s.content !== undefined) {
      const value = resolvePointer(document, s.content);
      if (value !== undefined && value !== null && typeof value !== 'string') invalid('stable.content', s.content, `expected a string or null, got ${describeType(value)}`);
      content = value;
    }
    let toolCalls: unknown[] = [];
    if (s.toolCalls !== undefined) {
      const value = resolvePointer(document, s.toolCalls);
      if (value !== undefined && value !== null && !Array.isArray(value)) invalid('stable.toolCalls', s.toolCalls, `expected an array of tool calls, got ${describeType(value)}`);
      toolCalls = Array.isArray(value) ? value.map(toolCall) : [];
    }
    const answered = content !== undefined || toolCalls.length > 0;
    if (!answered && !failed) {
      const pointer = s.content ?? s.toolCalls;
      if (pointer !== undefined) missing(s.content === undefined ? 'stable.toolCalls' : 'stable.content', pointer);
    }
    const finishReason = optionalText(document, 'stable.finishReason', s.finishReason) ?? null;
    const model = optionalText(document, 'stable.model', s.model);
    const responseId = optionalText(document, 'stable.responseId', s.responseId);

    const prompt = optionalInteger(document, 'stable.promptTokens', s.promptTokens);
    const completion = optionalInteger(document, 'stable.completionTokens', s.completionTokens);
    const total = optionalInteger(document, 'stable.totalTokens', s.totalTokens);
    const usage = prompt !== null && completion !== null ? { prompt, completion, total: total ?? prompt + completion, source: 'usage' as const } : null;
    const generating = ttftMs !== null && e2eMs > ttftMs ? e2eMs - ttftMs : null;

    let streamed = ttftMs !== null;
    if (s.streamed !== undefined) {
      const value = resolvePointer(document, s.streamed);
      if (typeof value === 'boolean') streamed = value;
      else if (value !== undefined && value !== null) invalid('stable.streamed', s.streamed, `expected true or false, got ${describeType(value)}`);
    }

    const error: ResponseError | null = failed
      ? {
          code: httpFailed ? CallErrorCode.httpStatus : CallErrorCode.failed,
          message: errorMessage ?? `the stable model answered HTTP ${status}`,
          retryable: status !== null && (status === 429 || status >= 500),
        }
      : null;
    const event = {
      schemaVersion: 1,
      requestId: request.requestId,
      arm: 'stable',
      occurredAt: request.occurredAt + Math.round(e2eMs),
      endpoint: { name: s.endpointName, model: model ?? request.body.model ?? null },
      outcome: failed ? 'error' : 'ok',
      status,
      error,
      response: answered
        ? {
            ...(responseId === undefined ? {} : { id: responseId }),
            ...(model === undefined ? {} : { model }),
            choices: [{ index: 0, content: content ?? null, toolCalls, finishReason }],
          }
        : null,
      usage,
      timing: {
        sentAt: request.occurredAt,
        ttftMs,
        e2eMs,
        tpotMs: generating !== null && completion !== null && completion > 1 ? generating / (completion - 1) : null,
        itl: null,
        outputTokensPerSec: generating !== null && completion !== null && completion > 0 ? completion / (generating / 1000) : null,
      },
      streamed,
    };
    const parsed = ResponseEventSchema.safeParse(event);
    if (!parsed.success) throw new MappingProblem(poison(AdaptReason.schemaInvalid, describeWithHints(parsed.error.issues, this.#stableHints, 'stable.')));
    return parsed.data;
  }
}

/** Foreign JSON values, mapped with a {@link FieldMapping}. */
export class FieldMappingAdapter implements InputAdapter {
  readonly kind = 'field-mapping';
  readonly #mapper: FieldMapper;

  constructor(mapping: FieldMapping) {
    this.#mapper = new FieldMapper(mapping);
  }

  adapt(record: ConsumedRecord): Promise<AdaptResult> {
    const decoded = decodeEvent(z.unknown(), record.value);
    return Promise.resolve(decoded.ok ? this.#mapper.map(decoded.value, record) : decoded);
  }
}

function show(pointer: JsonPointer): string {
  return pointer.source === '' ? '"" (the whole record)' : pointer.source;
}

function missing(field: string, pointer: JsonPointer): never {
  throw new MappingProblem(poison(AdaptReason.mappingMissing, `${field}: nothing at ${show(pointer)}`));
}

function invalid(field: string, pointer: JsonPointer, what: string): never {
  throw new MappingProblem(poison(AdaptReason.mappingInvalid, `${field} at ${show(pointer)}: ${what}`));
}

function kafkaTimestamp(record: ConsumedRecord): number {
  const ms = Number(record.timestamp);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new MappingProblem(poison(AdaptReason.mappingMissing, `occurredAt: not mapped and the record has no usable timestamp (${JSON.stringify(record.timestamp)})`));
  }
  return ms;
}

function epochMs(document: unknown, field: string, pointer: JsonPointer, unit: TimeUnit): number {
  const value = resolvePointer(document, pointer);
  if (value === undefined || value === null) return missing(field, pointer);
  const converted = toEpochMs(value, unit);
  return converted.ok ? converted.ms : invalid(field, pointer, converted.problem);
}

function requiredObject(document: unknown, field: string, pointer: JsonPointer): Record<string, unknown> {
  const value = resolvePointer(document, pointer);
  if (value === undefined || value === null) return missing(field, pointer);
  return isRecord(value) ? value : invalid(field, pointer, `expected an object, got ${describeType(value)}`);
}

/** A string (numbers are written out); undefined when not mapped or missing. */
function optionalText(document: unknown, field: string, pointer: JsonPointer | undefined): string | undefined {
  if (pointer === undefined) return undefined;
  const value = resolvePointer(document, pointer);
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return invalid(field, pointer, `expected a string, got ${describeType(value)}`);
}

/** A non-negative integer, or a string of digits; null when not mapped or missing. */
function optionalInteger(document: unknown, field: string, pointer: JsonPointer | undefined): number | null {
  if (pointer === undefined) return null;
  const value = resolvePointer(document, pointer);
  if (value === undefined || value === null) return null;
  const number = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof number === 'number' && Number.isSafeInteger(number) && number >= 0) return number;
  return invalid(field, pointer, `expected a non-negative integer, got ${typeof value === 'number' ? value : describeType(value)}`);
}

/** Milliseconds, a non-negative number or numeric string; null when missing. */
function duration(document: unknown, field: string, pointer: JsonPointer): number | null {
  const value = resolvePointer(document, pointer);
  if (value === undefined || value === null) return null;
  const number = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
  if (typeof number === 'number' && Number.isFinite(number) && number >= 0) return number;
  return invalid(field, pointer, `expected milliseconds (a non-negative number), got ${typeof value === 'number' ? value : describeType(value)}`);
}

/** The message of an error value; undefined when there is no error (missing, null, false, ""). */
function errorText(value: unknown): string | undefined {
  if (value === undefined || value === null || value === false || value === '') return undefined;
  if (typeof value === 'string') return value;
  if (isRecord(value)) {
    if (typeof value.message === 'string' && value.message !== '') return value.message;
    if (Object.keys(value).length === 0) return undefined;
  }
  return JSON.stringify(value) ?? typeof value;
}

function toolCall(value: unknown): unknown {
  if (!isRecord(value)) return value;
  const fn = isRecord(value.function) ? value.function : {};
  const args = fn.arguments;
  return {
    ...(typeof value.id === 'string' ? { id: value.id } : {}),
    type: typeof value.type === 'string' ? value.type : 'function',
    function: { name: fn.name, arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) },
  };
}

function withoutNulls(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== null && entry !== undefined));
}

function hints(entries: Record<string, JsonPointer | undefined>): Map<string, string> {
  const map = new Map<string, string>();
  for (const [path, pointer] of Object.entries(entries)) if (pointer !== undefined) map.set(path, pointer.source === '' ? '""' : pointer.source);
  return map;
}

/** `path: message (from /pointer)`, naming the pointer that supplied the offending field. */
function describeWithHints(issues: readonly z.core.$ZodIssue[], pointerHints: Map<string, string>, prefix: string): string {
  return issues
    .slice(0, 5)
    .map((issue) => {
      // Longest prefix of the field path (array indices skipped) that a pointer supplied.
      const keys = issue.path.filter((part) => typeof part !== 'number').map(String);
      let hint: string | undefined;
      for (let length = keys.length; length > 0 && hint === undefined; length--) hint = pointerHints.get(keys.slice(0, length).join('.'));
      return `${prefix}${formatPath(issue.path)}: ${issue.message}${hint === undefined ? '' : ` (from ${hint})`}`;
    })
    .join('; ');
}
