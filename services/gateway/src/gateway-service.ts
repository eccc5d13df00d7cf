import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { ChatRequestSchema, SECRET_HEADERS, STABLE_ARM, type RequestEvent, type ResponseError, type ResponseEvent } from '@shadow-replay/contracts';
import {
  CallErrorCode,
  ServiceHttpServer,
  ResponseAssembler,
  classifyCallError,
  counter,
  createKafka,
  createPipelineProducer,
  createRegistry,
  ensureTopics,
  gauge,
  histogram,
  once,
  openAiError,
  readBody,
  runSteps,
  sendJson,
  type Logger,
  type Service,
} from '@shadow-replay/platform';
import { Pool } from 'undici';
import type { GatewaySettings } from './config.js';
import { PublishBuffer } from './publish-buffer.js';
import { Redactor } from './redaction.js';
import { Sampler } from './sampler.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);
const SHADOWED_ROUTE = '/v1/chat/completions';
const ADMIN_SAMPLING = '/admin/sampling';

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
  readonly #stablePath: string;
  readonly #sampler: Sampler;
  readonly #redactor: Redactor;
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
      unpublishable: counter(registry, 'shadow_gateway_unpublishable_total', 'Requests proxied but not shadowed because they could not be, by reason (invalid_body, too_large)', ['reason']),
      notShadowed: counter(registry, 'shadow_gateway_not_shadowed_total', 'Requests proxied and deliberately not shadowed, by reason (sampled_out, opt_out, route, model)', ['reason']),
      passThrough: counter(registry, 'shadow_gateway_pass_through_total', 'Requests relayed without shadowing, by route', ['route']),
      samplingRate: gauge(registry, 'shadow_gateway_sampling_rate', 'Fraction of requests published', [], () => this.#sampler.rate),
      depth: gauge(registry, 'shadow_gateway_buffer_depth', 'Events waiting in the publish buffer', [], () => this.#buffer.depth),
    };
    const kafka = createKafka({ brokers: options.settings.addresses.kafkaBrokers, clientId: `${options.settings.kafka.clientId}-gateway`, log: options.log });
    this.#buffer = new PublishBuffer({
      producer: createPipelineProducer(kafka),
      log: options.log,
      maxEvents: options.settings.gateway.buffer.maxEvents,
      maxBytes: options.settings.gateway.buffer.maxBytes,
      // Topic creation waits for Kafka inside the publish loop, so a broker that is down never
      // delays the gateway's start or its users.
      prepare: options.settings.kafka.createTopics
        ? () => ensureTopics(kafka, [options.settings.kafka.topics.requests, options.settings.kafka.topics.stableResponses], options.settings.kafka.partitions)
        : undefined,
      onDropped: (count, reason) => this.#metrics.dropped.inc({ reason }, count),
      onSent: (count) => this.#metrics.published.inc(count),
    });
    this.#sampler = new Sampler(options.settings.gateway.sampling);
    this.#redactor = new Redactor(options.settings.gateway.redaction);
    const stable = new URL(options.settings.gateway.stable.baseUrl);
    this.#stablePath = stable.pathname.replace(/\/$/, '');
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

  get samplingRate(): number {
    return this.#sampler.rate;
  }

  /** Changes the published fraction at runtime (SIGHUP reload, admin endpoint). */
  setSamplingRate(rate: number): void {
    const previous = this.#sampler.rate;
    this.#sampler.setRate(rate);
    this.#log.info({ previous, rate }, 'sampling rate changed');
  }

  async start(): Promise<void> {
    this.#buffer.start();
    await this.#http.start();
    this.#log.info({ url: this.#http.url, stable: this.#settings.gateway.stable.baseUrl }, 'gateway listening');
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === ADMIN_SAMPLING) {
      await this.#adminSampling(req, res);
      return true;
    }
    if (this.#settings.gateway.passThrough.includes(path)) {
      await this.#relay(req, res, path);
      return true;
    }
    if (path !== SHADOWED_ROUTE) return false;
    const requestId = headerValue(req, 'x-request-id') ?? randomUUID();
    // Every answer carries the id, the gateway's own errors included, so users can quote it.
    res.setHeader('x-request-id', requestId);
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      this.#ownError(res, 405, `${SHADOWED_ROUTE} accepts POST only`, 'method_not_allowed');
      return true;
    }
    await this.#proxyChat(req, res, requestId);
    return true;
  }

  /** `GET` or `PUT {"rate": 0.25}` from loopback only: the sampling rate, changed without a restart. */
  async #adminSampling(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const remote = req.socket.remoteAddress ?? '';
    if (!['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(remote)) {
      openAiError(res, 403, `${ADMIN_SAMPLING} answers loopback clients only`, 'permission_error', 'forbidden');
      return;
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      let rate: unknown;
      try {
        rate = (JSON.parse((await readBody(req, 4096)).toString('utf8')) as { rate?: unknown }).rate;
      } catch {
        rate = undefined;
      }
      if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
        openAiError(res, 400, 'body must be JSON {"rate": <number between 0 and 1>}', 'invalid_request_error', 'invalid_rate', 'rate');
        return;
      }
      this.setSamplingRate(rate);
    } else if (req.method !== 'GET') {
      res.setHeader('allow', 'GET, PUT');
      openAiError(res, 405, `${ADMIN_SAMPLING} accepts GET and PUT`, 'invalid_request_error', 'method_not_allowed');
      return;
    }
    sendJson(res, 200, { rate: this.#sampler.rate });
  }

  /** Routes that are relayed as they are, body streamed both ways, and never shadowed. */
  async #relay(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    this.#metrics.passThrough.inc({ route });
    const headers = endToEndHeaders(req.headers);
    if (this.#settings.stableApiKey !== undefined) headers.authorization = `Bearer ${this.#settings.stableApiKey}`;
    const cancel = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) cancel.abort(new Error('client disconnected'));
    });
    const method = (req.method ?? 'GET') as 'GET';
    try {
      const upstream = await this.#upstream.request({
        path: `${this.#stablePath}${req.url ?? route}`,
        method,
        headers,
        body: method === 'GET' || method === ('HEAD' as string) ? null : req,
        signal: cancel.signal,
        headersTimeout: this.#settings.gateway.stable.timeouts.firstTokenMs,
        bodyTimeout: this.#settings.gateway.stable.timeouts.firstTokenMs,
      });
      const responseHeaders = endToEndHeaders(upstream.headers);
      res.writeHead(upstream.statusCode, responseHeaders);
      for await (const chunk of upstream.body) res.write(chunk as Buffer);
      res.end();
      this.#metrics.requests.inc({ route, status: `${Math.floor(upstream.statusCode / 100)}xx` });
    } catch (error) {
      const failure = classifyCallError(error, false, 0);
      if (!res.headersSent) this.#ownError(res, 502, 'the model endpoint is unreachable', 'upstream_unavailable');
      else res.destroy();
      this.#log.warn({ route, code: failure.code, err: error }, 'pass-through failed');
    }
  }

  #ownError(res: ServerResponse, status: number, message: string, code: string): void {
    this.#metrics.requests.inc({ route: SHADOWED_ROUTE, status: `${Math.floor(status / 100)}xx` });
    openAiError(res, status, message, status >= 500 ? 'server_error' : 'invalid_request_error', code);
  }

  async #proxyChat(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(req, this.#settings.gateway.maxBodyBytes);
    } catch {
      // The rest of the upload is never read, so this connection cannot carry another request.
      res.setHeader('connection', 'close');
      this.#ownError(res, 413, `request body is larger than ${this.#settings.gateway.maxBodyBytes} bytes`, 'request_too_large');
      return;
    }
    const occurredAt = Date.now();
    const sentAt = performance.now();
    const parsedBody = parseChatBody(body);
    const assembler = new ResponseAssembler(parsedBody ?? undefined, sentAt, occurredAt);
    const headers = endToEndHeaders(req.headers);
    headers['x-request-id'] = requestId;
    if (this.#settings.stableApiKey !== undefined) headers.authorization = `Bearer ${this.#settings.stableApiKey}`;

    const stable = this.#settings.gateway.stable;
    let status: number | null = null;
    let failure: ResponseError | null = null;
    let streamed = false;
    let aborted = false;
    // A user who leaves stops the stable model's work too; the total timeout bounds the rest.
    const cancel = new AbortController();
    const total = setTimeout(() => cancel.abort(new Error(`no complete answer within ${stable.timeouts.totalMs} ms`)), stable.timeouts.totalMs);
    res.on('close', () => {
      if (!res.writableFinished) {
        aborted = true;
        cancel.abort(new Error('client disconnected'));
      }
    });
    try {
      const upstream = await this.#upstream.request({
        path: `${this.#stablePath}${req.url ?? SHADOWED_ROUTE}`,
        method: 'POST',
        headers,
        body,
        signal: cancel.signal,
        headersTimeout: stable.timeouts.firstTokenMs,
        bodyTimeout: stable.timeouts.firstTokenMs,
      });
      status = upstream.statusCode;
      const responseHeaders = endToEndHeaders(upstream.headers);
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
      failure = classifyCallError(error, cancel.signal.aborted && !aborted, stable.timeouts.totalMs);
      if (!aborted) this.#log.warn({ requestId, code: failure.code, err: error }, 'stable endpoint failed');
      if (!res.headersSent) {
        const timedOut = failure.code === CallErrorCode.totalTimeout || failure.code === CallErrorCode.firstTokenTimeout || failure.code === CallErrorCode.idleTimeout;
        this.#ownError(res, timedOut ? 504 : 502, timedOut ? 'the model endpoint did not answer in time' : 'the model endpoint is unreachable', timedOut ? 'upstream_timeout' : 'upstream_unavailable');
      } else res.destroy();
    } finally {
      clearTimeout(total);
    }
    if (status !== null) this.#metrics.requests.inc({ route: SHADOWED_ROUTE, status: `${Math.floor(status / 100)}xx` });
    this.#metrics.upstreamLatency.observe({ route: SHADOWED_ROUTE }, (performance.now() - sentAt) / 1000);
    this.#publish(req, requestId, occurredAt, parsedBody, assembler, status, failure, streamed, aborted);
  }

  #publish(req: IncomingMessage, requestId: string, occurredAt: number, body: RequestEvent['body'] | null, assembler: ResponseAssembler, status: number | null, failure: ResponseError | null, streamed: boolean, aborted: boolean): void {
    if (body === null) {
      this.#metrics.unpublishable.inc({ reason: 'invalid_body' });
      return;
    }
    const decision = this.#sampler.decide({ requestId, route: SHADOWED_ROUTE, model: body.model, headers: req.headers });
    if (!decision.publish) {
      this.#metrics.notShadowed.inc({ reason: decision.reason });
      return;
    }
    const allow = new Set(this.#settings.gateway.headerAllowlist);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (allow.has(name) && !SECRET_HEADERS.includes(name) && typeof value === 'string') headers[name] = value;
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
      sampling: decision.decision,
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
      this.#metrics.unpublishable.inc({ reason: 'too_large' });
      return;
    }
    this.#buffer.offer([
      { topic: topics.requests, message: { key: requestId, value: requestValue } },
      { topic: topics.stableResponses, message: { key: requestId, value: responseValue } },
    ]);
  }
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

/**
 * The end-to-end headers of a message, as a proxy forwards them: hop-by-hop headers, and any
 * header the `Connection` header names, stay on their own hop.
 */
export function endToEndHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const connection = headers.connection;
  const named = new Set(
    (Array.isArray(connection) ? connection.join(',') : (connection ?? ''))
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name.length > 0),
  );
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    // Arrays stay arrays: repeated headers such as set-cookie must not be joined.
    out[name] = value;
  }
  return out;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first.length === 0 ? undefined : first;
}
