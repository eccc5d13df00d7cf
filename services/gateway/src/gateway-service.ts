import { once as onceEvent } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SECRET_HEADERS, SHADOWABLE_ROUTE, type ResponseError } from '@shadow-replay/contracts';
import {
  CallErrorCode,
  ServiceHttpServer,
  classifyCallError,
  collectedCounter,
  collectedGauge,
  counter,
  createRegistry,
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
import type { CountsReport } from './capture.js';
import type { GatewaySettings } from './config.js';
import { LiveExchange, type ExchangeOutcome } from './live-exchange.js';
import { endToEndHeaders, relayedResponseHeaders } from './proxy-headers.js';
import { PublisherThread } from './publisher-thread.js';
import { RequestIds } from './request-ids.js';
import { Sampler } from './sampler.js';

export { endToEndHeaders, relayedResponseHeaders } from './proxy-headers.js';

const SHADOWED_ROUTE = SHADOWABLE_ROUTE;
const ADMIN_SAMPLING = '/admin/sampling';
const CLIENT_REQUEST_ID = 'x-request-id';
/** The id the request's events are published under, on every answer. */
const SHADOW_REQUEST_ID = 'x-shadow-request-id';

export interface GatewayOptions {
  settings: GatewaySettings;
  log: Logger;
  /** Time allowed to flush buffered events at shutdown. @defaultValue `gateway.flushDeadlineMs` */
  flushDeadlineMs?: number;
}

/**
 * The only part on the user's path: proxies chat completions to the stable model and, after
 * the answer, hands the request and the relayed chunks (with their arrival times) to the
 * publisher thread, which builds the RequestEvent and the stable ResponseEvent and publishes
 * them through a bounded buffer. This thread relays bytes, takes timestamps and decides
 * sampling (a hash) before it keeps anything, so a request that is not published costs nothing more.
 */
export class GatewayService implements Service {
  readonly #settings: GatewaySettings;
  readonly #log: Logger;
  readonly #http: ServiceHttpServer;
  readonly #upstream: Pool;
  readonly #stablePath: string;
  readonly #publisher: PublisherThread;
  /** Request headers the publisher thread may need: the allowlist, the sampling headers, tenant and conversation. */
  readonly #capturedHeaders: string[];
  readonly #sampler: Sampler;
  readonly #requestIds: RequestIds;
  readonly #metrics;
  readonly #flushDeadlineMs: number;
  /** The loopback-only admin listener, when `gateway.admin` is set. */
  readonly #admin: Server | undefined;
  /** Chat exchanges not yet handed over: close() waits for them before it flushes. */
  readonly #exchanges = new Set<Promise<void>>();
  /** Answers in progress (proxied and relayed), so that close() can end their connections with them. */
  readonly #responses = new Set<ServerResponse>();
  #closing = false;
  /** What was published and dropped since start, for the report at shutdown. */
  readonly #totals = { sent: 0, dropped: {} as Record<string, number>, unpublishable: {} as Record<string, number> };
  readonly close: () => Promise<void>;

  constructor(options: GatewayOptions) {
    this.#settings = options.settings;
    this.#log = options.log;
    this.#flushDeadlineMs = options.flushDeadlineMs ?? options.settings.gateway.flushDeadlineMs;
    const gatewayConfig = options.settings.gateway;
    this.#sampler = new Sampler(gatewayConfig.sampling);
    this.#requestIds = new RequestIds(gatewayConfig.requestIds);
    const registry = createRegistry('gateway');
    // Counted in the publisher thread: a scrape first waits for its report of everything handed over so far.
    const synced = () => this.#publisher.sync();
    const threadCounter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => collectedCounter(registry, name, help, labelNames, synced);
    this.#metrics = {
      requests: counter(registry, 'shadow_gateway_requests_total', 'Requests proxied, by route and status class', ['route', 'status']),
      upstreamLatency: histogram(registry, 'shadow_gateway_upstream_seconds', 'Time from request to the end of the stable answer', ['route'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
      published: threadCounter('shadow_gateway_publish_sent_total', 'Events published to Kafka'),
      dropped: threadCounter('shadow_gateway_publish_dropped_total', 'Events dropped instead of waiting, by reason (buffer_full, send_failed, shutdown, handoff_full, publisher_failed)', ['reason']),
      unpublishable: threadCounter('shadow_gateway_unpublishable_total', 'Requests proxied but not shadowed because they could not be, by reason (invalid_body, too_large)', ['reason']),
      notShadowed: threadCounter('shadow_gateway_not_shadowed_total', 'Requests proxied and deliberately not shadowed, by reason (sampled_out, opt_out, route, model)', ['reason']),
      passThrough: counter(registry, 'shadow_gateway_pass_through_total', 'Requests relayed without shadowing, by route', ['route']),
      samplingRate: collectedGauge(registry, 'shadow_gateway_sampling_rate', 'Fraction of requests published', () => this.#sampler.rate),
      depth: collectedGauge(registry, 'shadow_gateway_buffer_depth', 'Events waiting in the publish buffer', async () => {
        await synced();
        return this.#publisher.depth;
      }),
      bufferBytes: collectedGauge(registry, 'shadow_gateway_buffer_bytes', 'Bytes of the events waiting in the publish buffer', async () => {
        await synced();
        return this.#publisher.bufferBytes;
      }),
      handoffExchanges: collectedGauge(registry, 'shadow_gateway_handoff_exchanges', 'Exchanges handed to the publisher thread and not yet taken in', () => this.#publisher.inFlight.exchanges),
      handoffBytes: collectedGauge(registry, 'shadow_gateway_handoff_bytes', 'Bytes of the exchanges handed to the publisher thread and not yet taken in', () => this.#publisher.inFlight.bytes),
    };
    this.#publisher = new PublisherThread({ settings: options.settings, log: options.log, onCounts: (counts) => this.#count(counts) });
    const sampling = gatewayConfig.sampling;
    this.#capturedHeaders = [
      ...new Set([...gatewayConfig.headerAllowlist, sampling.optOutHeader, ...(sampling.keyHeader === undefined ? [] : [sampling.keyHeader]), 'x-tenant-id', 'x-conversation-id', CLIENT_REQUEST_ID]),
    ].filter((name) => !SECRET_HEADERS.includes(name));
    const stable = new URL(gatewayConfig.stable.baseUrl);
    this.#stablePath = stable.pathname.replace(/\/$/, '');
    const connections = gatewayConfig.upstream.connections;
    this.#upstream = new Pool(stable.origin, { connections: connections === 0 ? null : connections, pipelining: 1, keepAliveTimeout: 30_000 });
    this.#http = new ServiceHttpServer({
      host: gatewayConfig.listen.host,
      port: gatewayConfig.listen.port,
      log: options.log,
      registry,
      ready: () => true,
      routes: (req, res) => this.#route(req, res),
    });
    this.#admin = gatewayConfig.admin === undefined ? undefined : createServer((req, res) => this.#adminRoute(req, res));
    this.close = once(() =>
      runSteps(this.#log, [
        ['admin', () => closeServer(this.#admin)],
        ['keep-alive', () => this.#endKeepAlive()],
        // Stops accepting, then waits for the requests in flight to be answered.
        ['http', () => this.#http.close()],
        ['exchanges', () => Promise.all(this.#exchanges)],
        ['publisher', () => this.#publisher.close(this.#flushDeadlineMs)],
        ['report', () => this.#log.info({ ...this.#totals, flushDeadlineMs: this.#flushDeadlineMs }, 'publish totals at shutdown')],
        ['upstream', () => this.#upstream.close()],
      ]),
    );
  }

  /** The loopback-only admin listener's address, when `gateway.admin` is set. */
  get adminUrl(): string | undefined {
    const address = this.#admin?.address() as AddressInfo | null | undefined;
    if (address === undefined || address === null) return undefined;
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  /** The address the gateway listens on. */
  get url(): string {
    return this.#http.url;
  }

  /** Events waiting in the publish buffer, as the publisher thread last reported. */
  get bufferDepth(): number {
    return this.#publisher.depth;
  }

  /** The handle on the publisher thread (its hand-off bound, and `stall` for tests). */
  get publisher(): PublisherThread {
    return this.#publisher;
  }

  get samplingRate(): number {
    return this.#sampler.rate;
  }

  /** Changes the published fraction at runtime (SIGHUP reload, admin endpoint); requests from now on are decided at the new rate. */
  setSamplingRate(rate: number): void {
    const previous = this.#sampler.rate;
    this.#sampler.setRate(rate);
    this.#log.info({ previous, rate }, 'sampling rate changed');
  }

  async start(): Promise<void> {
    await this.#publisher.start();
    const admin = this.#settings.gateway.admin;
    if (this.#admin !== undefined && admin !== undefined) await listen(this.#admin, admin.host, admin.port);
    await this.#http.start();
    this.#log.info({ url: this.#http.url, admin: this.adminUrl, stable: this.#settings.gateway.stable.baseUrl }, 'gateway listening');
  }

  #count(counts: CountsReport): void {
    const metrics = this.#metrics;
    const totals = this.#totals;
    totals.sent += counts.sent;
    if (counts.sent > 0) metrics.published.inc(counts.sent);
    for (const [reason, count] of Object.entries(counts.dropped)) {
      metrics.dropped.inc({ reason }, count);
      totals.dropped[reason] = (totals.dropped[reason] ?? 0) + count;
    }
    for (const [reason, count] of Object.entries(counts.unpublishable)) {
      metrics.unpublishable.inc({ reason }, count);
      totals.unpublishable[reason] = (totals.unpublishable[reason] ?? 0) + count;
    }
    for (const [reason, count] of Object.entries(counts.notShadowed)) metrics.notShadowed.inc({ reason }, count);
  }

  /**
   * From now on every answer closes its connection: the server's close() ends only connections
   * that are idle when it is called, and a client's keep-alive connection would otherwise hold
   * shutdown until its deadline after the last answer.
   */
  #endKeepAlive(): void {
    this.#closing = true;
    for (const res of this.#responses) closeAfter(res);
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    this.#responses.add(res);
    res.once('close', () => this.#responses.delete(res));
    if (this.#closing) closeAfter(res);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (this.#settings.gateway.passThrough.includes(path)) {
      await this.#relay(req, res, path);
      return true;
    }
    if (path !== SHADOWED_ROUTE) return false;
    // The client's id is never trusted as a key unless configured (request-ids.ts).
    const clientId = headerValue(req, CLIENT_REQUEST_ID);
    const ids = { requestId: this.#requestIds.next(clientId), clientId };
    // Every answer carries both ids, the gateway's own errors included, so users can quote them.
    res.setHeader(CLIENT_REQUEST_ID, clientId ?? ids.requestId);
    res.setHeader(SHADOW_REQUEST_ID, ids.requestId);
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      this.#ownError(res, 405, `${SHADOWED_ROUTE} accepts POST only`, 'method_not_allowed');
      return true;
    }
    const exchange = this.#proxyChat(req, res, ids);
    this.#exchanges.add(exchange);
    try {
      await exchange;
    } finally {
      this.#exchanges.delete(exchange);
    }
    return true;
  }

  /** The admin listener: only `/admin/sampling`. */
  #adminRoute(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path !== ADMIN_SAMPLING) {
      openAiError(res, 404, `no route for ${req.method ?? 'GET'} ${path}`, 'invalid_request_error', 'not_found');
      return;
    }
    this.#adminSampling(req, res).catch((error: unknown) => {
      this.#log.error({ err: error }, 'admin request failed');
      openAiError(res, 500, 'internal error', 'server_error', 'internal_error');
    });
  }

  /** `GET` or `PUT {"rate": 0.25}` on the loopback admin listener: the sampling rate, changed without a restart. */
  async #adminSampling(req: IncomingMessage, res: ServerResponse): Promise<void> {
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
      res.writeHead(upstream.statusCode, relayedResponseHeaders(upstream.headers));
      // Each chunk goes out as it arrives; a slow client pauses the upstream read instead of filling memory.
      for await (const chunk of upstream.body) {
        if (!res.write(chunk as Buffer)) await onceEvent(res, 'drain', { signal: cancel.signal });
      }
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

  async #proxyChat(req: IncomingMessage, res: ServerResponse, ids: { requestId: string; clientId: string | undefined }): Promise<void> {
    const { requestId, clientId } = ids;
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
    const headers = endToEndHeaders(req.headers);
    // The stable model sees the client's own id, or the gateway's when there is none.
    headers[CLIENT_REQUEST_ID] = clientId ?? requestId;
    if (this.#settings.stableApiKey !== undefined) headers.authorization = `Bearer ${this.#settings.stableApiKey}`;

    // Decided before anything is kept: an exchange that is not published keeps no chunk.
    const sampling = this.#sampler.decide({ requestId, route: SHADOWED_ROUTE, headers: req.headers });
    const maxCapture = this.#settings.gateway.handoff.maxCaptureBytes;
    let captureLimit: number | null = null;
    if (!sampling.publish) this.#metrics.notShadowed.inc({ reason: sampling.reason });
    else if (body.length > maxCapture) this.#count({ ...NO_COUNTS, unpublishable: { too_large: 1 } });
    else captureLimit = maxCapture - body.length;

    const stable = this.#settings.gateway.stable;
    let aborted = false;
    let timedOut = false;
    const outcome = await new Promise<ExchangeOutcome>((resolve) => {
      const exchange = new LiveExchange(res, sentAt, { [CLIENT_REQUEST_ID]: clientId ?? requestId, [SHADOW_REQUEST_ID]: requestId }, captureLimit, resolve);
      // A user who leaves stops the stable model's work too; the total timeout bounds the rest.
      const total = setTimeout(() => {
        timedOut = true;
        exchange.abort(new Error(`no complete answer within ${stable.timeouts.totalMs} ms`));
      }, stable.timeouts.totalMs);
      res.once('close', () => {
        clearTimeout(total);
        if (!res.writableFinished) {
          aborted = true;
          exchange.abort(new Error('client disconnected'));
        }
      });
      this.#upstream.dispatch(
        { path: `${this.#stablePath}${req.url ?? SHADOWED_ROUTE}`, method: 'POST', headers, body, headersTimeout: stable.timeouts.firstTokenMs, bodyTimeout: stable.timeouts.firstTokenMs },
        exchange,
      );
    });
    const { status, streamed, chunks, chunkTimes, endAt } = outcome;
    let failure: ResponseError | null = null;
    if (outcome.error !== null) {
      failure = classifyCallError(outcome.error, timedOut && !aborted, stable.timeouts.totalMs);
      if (!aborted) this.#log.warn({ requestId, code: failure.code, err: outcome.error }, 'stable endpoint failed');
      if (!res.headersSent) {
        const late = failure.code === CallErrorCode.totalTimeout || failure.code === CallErrorCode.firstTokenTimeout || failure.code === CallErrorCode.idleTimeout;
        this.#ownError(res, late ? 504 : 502, late ? 'the model endpoint did not answer in time' : 'the model endpoint is unreachable', late ? 'upstream_timeout' : 'upstream_unavailable');
      } else res.destroy();
    }
    if (status !== null) this.#metrics.requests.inc({ route: SHADOWED_ROUTE, status: `${Math.floor(status / 100)}xx` });
    this.#metrics.upstreamLatency.observe({ route: SHADOWED_ROUTE }, endAt / 1000);
    if (!sampling.publish || captureLimit === null) return;
    if (outcome.overflowed) {
      this.#count({ ...NO_COUNTS, unpublishable: { too_large: 1 } });
      return;
    }
    const captured: Record<string, string | string[]> = {};
    for (const name of this.#capturedHeaders) {
      const value = req.headers[name];
      if (value !== undefined) captured[name] = value;
    }
    this.#publisher.offer({ requestId, occurredAt, headers: captured, sampling: sampling.decision, status, failure, streamed, aborted, body, chunks, chunkTimes, endAt });
  }
}

/** The connection of `res` closes once it is answered. */
function closeAfter(res: ServerResponse): void {
  if (!res.headersSent) {
    // Node then sends `connection: close` and ends the socket after the answer.
    res.shouldKeepAlive = false;
    return;
  }
  const socket = res.socket;
  if (res.writableFinished) socket?.destroySoon();
  else res.once('finish', () => socket?.destroySoon());
}

const NO_COUNTS: CountsReport = { taken: 0, takenBytes: 0, sent: 0, dropped: {}, unpublishable: {}, notShadowed: {}, depth: 0, bytes: 0 };

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined || !server.listening) return Promise.resolve();
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first.length === 0 ? undefined : first;
}
