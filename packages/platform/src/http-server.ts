import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { PlatformError, PlatformErrorCode } from './errors.js';
import type { Logger } from './logger.js';

/** Handles a request and returns true, or returns false to let the next handler try. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export interface ServiceHttpOptions {
  host: string;
  port: number;
  log: Logger;
  registry: Registry;
  /** `/readyz` answers 200 while this returns true. */
  ready: () => boolean;
  routes?: RouteHandler;
}

/** The OpenAI error body every HTTP error of ours uses. */
export function openAiError(res: ServerResponse, status: number, message: string, type = 'invalid_request_error', code: string | null = null, param: string | null = null): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { message, type, param, code } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Reads a request body, refusing more than `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw new PlatformError(PlatformErrorCode.bodyTooLarge, `request body is larger than ${limit} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The HTTP face every service has: `/healthz` (process alive), `/readyz` (connected and
 * consuming), `/metrics` (Prometheus text), plus the service's own routes.
 */
export class ServiceHttpServer {
  readonly #options: ServiceHttpOptions;
  readonly #server: Server;
  #closing: Promise<void> | undefined;

  constructor(options: ServiceHttpOptions) {
    this.#options = options;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        options.log.error({ err: error, url: req.url }, 'request handler failed');
        openAiError(res, 500, 'internal error', 'server_error', 'internal_error');
      });
    });
    this.#server.keepAliveTimeout = 65_000;
  }

  get server(): Server {
    return this.#server;
  }

  /** The bound address, e.g. `http://127.0.0.1:43121`. */
  get url(): string {
    const address = this.#server.address() as AddressInfo | null;
    if (address === null) throw new Error('server is not listening');
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Stops accepting connections and waits for in-flight requests to finish; connections still
   * open after `deadlineMs` (a stalled upload, a client that never reads) are cut.
   */
  close(deadlineMs = 10_000): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#server.closeAllConnections(), deadlineMs);
      timer.unref();
      this.#server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      this.#server.closeIdleConnections();
    });
    return this.#closing;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const ready = this.#options.ready();
      return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready' });
    }
    if (req.method === 'GET' && path === '/metrics') {
      const text = await this.#options.registry.metrics();
      res.writeHead(200, { 'content-type': this.#options.registry.contentType });
      res.end(text);
      return;
    }
    if (this.#options.routes && (await this.#options.routes(req, res))) return;
    openAiError(res, 404, `no route for ${req.method ?? 'GET'} ${path ?? '/'}`, 'invalid_request_error', 'not_found');
  }
}
