import { ChatRequestSchema, SECRET_HEADERS, SHADOWABLE_ROUTE, STABLE_ARM, type RequestEvent, type ResponseError, type ResponseEvent } from '@shadow-replay/contracts';
import { CallErrorCode, ResponseAssembler, createKafka, createPipelineProducer, ensureTopics, type Logger } from '@shadow-replay/platform';
import type { CapturedExchange, CountsReport, DropReason } from './capture.js';
import type { GatewaySettings } from './config.js';
import { PublishBuffer } from './publish-buffer.js';
import { Redactor } from './redaction.js';
import { Sampler, SkipReason } from './sampler.js';

const SHADOWED_ROUTE = SHADOWABLE_ROUTE;

export interface ShadowPublisherOptions {
  settings: GatewaySettings;
  log: Logger;
  /** Called when counts changed, so they can be reported (coalesced by the caller). */
  onChange: () => void;
}

/**
 * Everything the gateway does for the shadow path, off the live path: assembles the stable
 * answer from the relayed chunks (timed with the live path's timestamps), applies the model
 * filter (the live path decided the rest of sampling before keeping anything), builds and
 * redacts the events, serializes them and owns the bounded publish buffer and the Kafka
 * producer. Runs in the publisher thread.
 */
export class ShadowPublisher {
  readonly #settings: GatewaySettings;
  readonly #sampler: Sampler;
  readonly #redactor: Redactor;
  readonly #buffer: PublishBuffer;
  readonly #allow: Set<string>;
  readonly #onChange: () => void;
  #counts: CountsReport = emptyCounts();

  constructor(options: ShadowPublisherOptions) {
    const { settings } = options;
    this.#settings = settings;
    this.#onChange = options.onChange;
    this.#sampler = new Sampler(settings.gateway.sampling);
    this.#redactor = new Redactor(settings.gateway.redaction);
    // The client's own request id is always recorded: the event's id is the gateway's (request-ids.ts).
    this.#allow = new Set([...settings.gateway.headerAllowlist, 'x-request-id'].filter((name) => !SECRET_HEADERS.includes(name)));
    const kafka = createKafka({ brokers: settings.addresses.kafkaBrokers, clientId: `${settings.kafka.clientId}-gateway`, log: options.log });
    this.#buffer = new PublishBuffer({
      producer: createPipelineProducer(kafka),
      log: options.log,
      maxEvents: settings.gateway.buffer.maxEvents,
      maxBytes: settings.gateway.buffer.maxBytes,
      // Topic creation waits for Kafka inside the publish loop, so a broker that is down never
      // delays the gateway's start or its users.
      prepare: settings.kafka.createTopics ? () => ensureTopics(kafka, [settings.kafka.topics.requests, settings.kafka.topics.stableResponses], settings.kafka.partitions) : undefined,
      onDropped: (count, reason) => this.#dropped(count, reason),
      onSent: (count) => {
        this.#counts.sent += count;
        this.#onChange();
      },
    });
  }

  start(): void {
    this.#buffer.start();
  }

  /** The counts since the last call, with the buffer's current depth. */
  takeCounts(): CountsReport {
    const counts = this.#counts;
    counts.depth = this.#buffer.depth;
    counts.bytes = this.#buffer.bytes;
    this.#counts = emptyCounts();
    return counts;
  }

  /** Flushes what is buffered until the deadline; the rest is dropped and counted. */
  close(deadlineMs: number): Promise<void> {
    return this.#buffer.close(deadlineMs);
  }

  /** Turns one relayed exchange into its two events and offers them to the buffer; never waits. */
  handle(exchange: CapturedExchange): void {
    this.#counts.taken++;
    this.#counts.takenBytes += exchange.bytes.byteLength;
    const bytes = Buffer.from(exchange.bytes);
    const body = parseChatBody(bytes.subarray(0, exchange.bodyLength));
    if (body === null) {
      bump(this.#counts.unpublishable, 'invalid_body');
      this.#onChange();
      return;
    }
    if (!this.#sampler.acceptsModel(body.model)) {
      bump(this.#counts.notShadowed, SkipReason.model);
      this.#onChange();
      return;
    }
    const assembler = new ResponseAssembler(body, 0, exchange.occurredAt);
    let offset = exchange.bodyLength;
    if (exchange.streamed) {
      // The assembler decodes across chunks: a chunk may end inside a multi-byte character.
      for (let index = 0; index < exchange.chunkLengths.length; index++) {
        const length = exchange.chunkLengths[index] ?? 0;
        assembler.feedSse(bytes.subarray(offset, offset + length), exchange.chunkTimes[index] ?? exchange.endAt);
        offset += length;
      }
      assembler.end(exchange.endAt);
    } else {
      assembler.end(exchange.endAt);
      // Only a complete answer is parsed: the original code fed the body only when the relay finished.
      if (exchange.failure === null) assembler.feedJson(bytes.subarray(offset));
    }

    // Header values are free text too (a user agent may carry an address).
    const redactor = this.#redactor;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(exchange.headers)) {
      if (this.#allow.has(name) && typeof value === 'string') headers[name] = redactor.text(value);
    }
    const rawTenant = headerValue(exchange.headers, 'x-tenant-id');
    const rawConversation = headerValue(exchange.headers, 'x-conversation-id');
    const tenant = rawTenant === undefined ? undefined : redactor.text(rawTenant);
    const conversationId = rawConversation === undefined ? undefined : redactor.text(rawConversation);
    const { requestId, status, failure, aborted, streamed } = exchange;
    const requestEvent: RequestEvent = {
      schemaVersion: 1,
      requestId,
      occurredAt: exchange.occurredAt,
      route: SHADOWED_ROUTE,
      ...(tenant === undefined ? {} : { tenant }),
      ...(conversationId === undefined ? {} : { conversationId }),
      sampling: exchange.sampling,
      body: this.#redactor.request(body),
      headers,
    };
    const result = assembler.result(streamed);
    const ok = failure === null && status !== null && status < 400 && result.complete && !result.malformed && !aborted;
    const responseEvent: ResponseEvent = {
      schemaVersion: 1,
      requestId,
      arm: STABLE_ARM,
      occurredAt: Date.now(),
      endpoint: { name: this.#settings.gateway.stable.name, model: result.response?.model ?? body.model ?? null },
      outcome: aborted ? 'aborted' : ok ? 'ok' : 'error',
      status,
      error: ok || aborted ? null : (failure ?? responseError(status, result)),
      response: this.#redactor.response(result.response),
      usage: result.usage,
      timing: result.timing,
      streamed,
    };
    const topics = this.#settings.kafka.topics;
    const requestValue = Buffer.from(JSON.stringify(requestEvent));
    const responseValue = Buffer.from(JSON.stringify(responseEvent));
    if (Math.max(requestValue.length, responseValue.length) > this.#settings.gateway.maxEventBytes) {
      bump(this.#counts.unpublishable, 'too_large');
      this.#onChange();
      return;
    }
    this.#buffer.offer([
      { topic: topics.requests, message: { key: requestId, value: requestValue } },
      { topic: topics.stableResponses, message: { key: requestId, value: responseValue } },
    ]);
    this.#onChange();
  }

  #dropped(count: number, reason: DropReason): void {
    this.#counts.dropped[reason] = (this.#counts.dropped[reason] ?? 0) + count;
    this.#onChange();
  }
}

function emptyCounts(): CountsReport {
  return { taken: 0, takenBytes: 0, sent: 0, dropped: {}, unpublishable: {}, notShadowed: {}, depth: 0, bytes: 0 };
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** The error of an answer that arrived but is not a success. */
function responseError(status: number | null, result: { complete: boolean; malformed: boolean }): ResponseError {
  if (status !== null && status >= 400) return { code: CallErrorCode.httpStatus, message: `the stable model answered HTTP ${status}`, retryable: status === 429 || status >= 500 };
  if (result.malformed) return { code: CallErrorCode.malformed, message: 'the stable answer is not valid JSON', retryable: true };
  return { code: CallErrorCode.truncated, message: 'the stable stream ended before a finish reason or [DONE]', retryable: true };
}

function parseChatBody(body: Buffer): RequestEvent['body'] | null {
  try {
    const parsed = ChatRequestSchema.safeParse(JSON.parse(body.toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function headerValue(headers: Record<string, string | string[]>, name: string): string | undefined {
  const value = headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first.length === 0 ? undefined : first;
}
