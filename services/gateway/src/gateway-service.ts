import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { ChatRequestSchema, STABLE_ARM, type RequestEvent, type ResponseEvent } from '@shadow-replay/contracts';
import {
  ServiceHttpServer,
  ResponseAssembler,
  counter,
  createKafka,
  createPipelineProducer,
  createRegistry,
  gauge,
  histogram,
  once,
  openAiError,
  readBody,
  runSteps,
  type Logger,
  type Service,
} from '@shadow-replay/platform';
import { Pool } from 'undici';
import type { GatewaySettings } from './config.js';
import { PublishBuffer } from './publish-buffer.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);
const SHADOWED_ROUTE = '/v1/chat/completions';

export interface GatewayOptions {
  settings: GatewaySettings;
  log: Logger;
  /** Time allowed to flush buffered events at shutdown. @defaultValue 5000 */
  flushDeadlineMs?: number;
}

/**
 * The only part on the user's path: proxies chat completions to the stable model and,
 * after the answer, hands a RequestEvent and the stable ResponseEvent to a bounded buffer.
 */
export class GatewayService implements Service {
  readonly #settings: GatewaySettings;
  readonly #log: Logger;
  readonly #http: ServiceHttpServer;
  readonly #upstream: Pool;
  readonly #buffer: PublishBuffer;
  readonly #metrics;
  readonly #flushDeadlineMs: number;
  readonly close: () => Promise<void>;

  constructor(options: GatewayOptions) {
    this.#settings = options.settings;
    this.#log = options.log;
    this.#flushDeadlineMs = options.flushDeadlineMs ?? 5_000;
    const registry = createRegistry('gateway');
    this.#metrics = {
      requests: counter(registry, 'shadow_gateway_requests_total', 'Requests proxied, by route and status class', ['route', 'status']),
      upstreamLatency: histogram(registry, 'shadow_gateway_upstream_seconds', 'Time from request to the end of the stable answer', ['route'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
      published: counter(registry, 'shadow_gateway_publish_sent_total', 'Events published to Kafka'),
      dropped: counter(registry, 'shadow_gateway_publish_dropped_total', 'Events dropped instead of waiting on Kafka', ['reason']),
      unpublishable: counter(registry, 'shadow_gateway_unpublishable_total', 'Requests proxied but not shadowed, by reason', ['reason']),
      depth: gauge(registry, 'shadow_gateway_buffer_depth', 'Events waiting in the publish buffer', [], () => this.#buffer.depth),
    };
    const kafka = createKafka({ brokers: options.settings.addresses.kafkaBrokers, clientId: `${options.settings.kafka.clientId}-gateway`, log: options.log });
    this.#buffer = new PublishBuffer({
      producer: createPipelineProducer(kafka),
      log: options.log,
      maxEvents: options.settings.gateway.buffer.maxEvents,
      maxBytes: options.settings.gateway.buffer.maxBytes,
      onDropped: (count, reason) => this.#metrics.dropped.inc({ reason }, count),
      onSent: (count) => this.#metrics.published.inc(count),
    });
    const stable = new URL(options.settings.gateway.stable.baseUrl);
    this.#upstream = new Pool(stable.origin, { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 });
    this.#http = new ServiceHttpServer({
      host: options.settings.gateway.listen.host,
      port: options.settings.gateway.listen.port,
      log: options.log,
      registry,
      ready: () => true,
      routes: (req, res) => this.#route(req, res),
    });
    this.close = once(() =>
      runSteps(this.#log, [
        ['http', () => this.#http.close()],
        ['buffer', () => this.#buffer.close(this.#flushDeadlineMs)],
        ['upstream', () => this.#upstream.close()],
      ]),
    );
  }

  /** The address the gateway listens on. */
  get url(): string {
    return this.#http.url;
  }

  get bufferDepth(): number {
    return this.#buffer.depth;
  }

  async start(): Promise<void> {
    this.#buffer.start();
    await this.#http.start();
    this.#log.info({ url: this.#http.url, stable: this.#settings.gateway.stable.baseUrl }, 'gateway listening');
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== SHADOWED_ROUTE) return false;
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      openAiError(res, 405, `${SHADOWED_ROUTE} accepts POST only`, 'invalid_request_error', 'method_not_allowed');
      return true;
    }
    await this.#proxyChat(req, res);
    return true;
  }

  async #proxyChat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(req, this.#settings.gateway.maxBodyBytes);
    } catch {
      openAiError(res, 413, `request body is larger than ${this.#settings.gateway.maxBodyBytes} bytes`, 'invalid_request_error', 'request_too_large');
      return;
    }
    const requestId = headerValue(req, 'x-request-id') ?? randomUUID();
    const occurredAt = Date.now();
    const sentAt = performance.now();
    const parsedBody = parseChatBody(body);
    const assembler = new ResponseAssembler(parsedBody ?? undefined, sentAt, occurredAt);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    headers['x-request-id'] = requestId;
    if (this.#settings.stableApiKey !== undefined) headers.authorization = `Bearer ${this.#settings.stableApiKey}`;

    let status = 502;
    let streamed = false;
    let aborted = false;
    res.on('close', () => {
      if (!res.writableFinished) aborted = true;
    });
    try {
      const upstream = await this.#upstream.request({
        path: `${new URL(this.#settings.gateway.stable.baseUrl).pathname.replace(/\/$/, '')}${req.url ?? SHADOWED_ROUTE}`,
        method: 'POST',
        headers,
        body,
        headersTimeout: this.#settings.gateway.stable.timeouts.firstTokenMs,
        bodyTimeout: this.#settings.gateway.stable.timeouts.firstTokenMs,
      });
      status = upstream.statusCode;
      const responseHeaders: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(upstream.headers)) {
        if (!HOP_BY_HOP.has(name) && value !== undefined) responseHeaders[name] = value;
      }
      responseHeaders['x-request-id'] = requestId;
      res.writeHead(status, responseHeaders);
      streamed = String(upstream.headers['content-type'] ?? '').includes('text/event-stream');
      const chunks: Buffer[] = [];
      for await (const chunk of upstream.body) {
        const buffer = chunk as Buffer;
        res.write(buffer);
        if (streamed) assembler.feedSse(buffer);
        else chunks.push(buffer);
      }
      assembler.end();
      if (!streamed) assembler.feedJson(Buffer.concat(chunks));
      res.end();
    } catch (error) {
      assembler.end();
      this.#log.warn({ requestId, err: error }, 'stable endpoint failed');
      if (!res.headersSent) openAiError(res, 502, 'the model endpoint did not answer', 'server_error', 'upstream_unavailable');
      else res.destroy();
    }
    this.#metrics.requests.inc({ route: SHADOWED_ROUTE, status: `${Math.floor(status / 100)}xx` });
    this.#metrics.upstreamLatency.observe({ route: SHADOWED_ROUTE }, (performance.now() - sentAt) / 1000);
    this.#publish(req, requestId, occurredAt, parsedBody, assembler, status, streamed, aborted);
  }

  #publish(req: IncomingMessage, requestId: string, occurredAt: number, body: RequestEvent['body'] | null, assembler: ResponseAssembler, status: number, streamed: boolean, aborted: boolean): void {
    if (body === null) {
      this.#metrics.unpublishable.inc({ reason: 'invalid_body' });
      return;
    }
    const rate = this.#settings.gateway.sampling.rate;
    if (!sampled(requestId, rate)) return;
    const allow = new Set(this.#settings.gateway.headerAllowlist);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (allow.has(name) && typeof value === 'string') headers[name] = value;
    }
    const tenant = headerValue(req, 'x-tenant-id');
    const conversationId = headerValue(req, 'x-conversation-id');
    const requestEvent: RequestEvent = {
      schemaVersion: 1,
      requestId,
      occurredAt,
      route: SHADOWED_ROUTE,
      ...(tenant === undefined ? {} : { tenant }),
      ...(conversationId === undefined ? {} : { conversationId }),
      sampling: { rate, key: null, sampled: true },
      body,
      headers,
    };
    const result = assembler.result(streamed);
    const ok = status < 400 && result.complete && !aborted;
    const responseEvent: ResponseEvent = {
      schemaVersion: 1,
      requestId,
      arm: STABLE_ARM,
      occurredAt: Date.now(),
      endpoint: { name: this.#settings.gateway.stable.name, model: result.response?.model ?? body.model ?? null },
      outcome: aborted ? 'aborted' : ok ? 'ok' : 'error',
      status: status === 502 && result.response === null ? null : status,
      error: ok || aborted ? null : { code: status >= 400 ? 'http_status' : 'incomplete_response', message: `stable answered ${status}`, retryable: status === 429 || status >= 500 },
      response: result.response,
      usage: result.usage,
      timing: result.timing,
      streamed,
    };
    const topics = this.#settings.kafka.topics;
    this.#buffer.offer([
      { topic: topics.requests, message: { key: requestId, value: Buffer.from(JSON.stringify(requestEvent)) } },
      { topic: topics.stableResponses, message: { key: requestId, value: Buffer.from(JSON.stringify(responseEvent)) } },
    ]);
  }
}

function parseChatBody(body: Buffer): RequestEvent['body'] | null {
  try {
    const parsed = ChatRequestSchema.safeParse(JSON.parse(body.toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Uniform sampling keyed on the request id, so a retry of the same request gets the same decision. */
export function sampled(requestId: string, rate: number): boolean {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  const bucket = createHash('sha256').update(requestId).digest().readUInt32BE(0) / 0x1_0000_0000;
  return bucket < rate;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first.length === 0 ? undefined : first;
}
