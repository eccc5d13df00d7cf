import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { relayedResponseHeaders } from './proxy-headers.js';

/** How a call to the stable model ended, as the live path saw it. */
export interface ExchangeOutcome {
  status: number | null;
  streamed: boolean;
  /** The error that ended the call early, if any (timeout, refused connection, the user leaving). */
  error: unknown;
  /** Every chunk relayed to the user, in order (references, not copies); empty when not captured. */
  chunks: Buffer[];
  /** Arrival of each chunk of a streamed answer, ms after the request was sent; empty when not captured. */
  chunkTimes: number[];
  /** The answer outgrew the capture limit: what was kept was let go, nothing of it can be published. */
  overflowed: boolean;
  /** End of the answer or of the failure, ms after the request was sent. */
  endAt: number;
}

/**
 * One call to the stable model, relayed to the user by an undici dispatch handler: each chunk
 * is written to the user as it arrives, with no stream or promise in between. When the exchange
 * is to be published, the chunk's reference and arrival time are kept, up to `captureLimit`
 * bytes; past it they are let go (the relay goes on). Backpressure from a slow user pauses the
 * upstream read.
 */
export class LiveExchange implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #sentAt: number;
  readonly #extraHeaders: Record<string, string>;
  readonly #done: (outcome: ExchangeOutcome) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #abortReason: Error | undefined;
  #status: number | null = null;
  #streamed = false;
  #held: Buffer | undefined;
  #paused = false;
  #finished = false;
  #chunks: Buffer[] = [];
  #chunkTimes: number[] = [];
  /** Bytes that may still be kept, or null when nothing is (not published, or overflowed). */
  #room: number | null;
  #overflowed = false;

  /** `captureLimit`: answer bytes to keep for publishing; null keeps nothing. */
  constructor(res: ServerResponse, sentAt: number, extraHeaders: Record<string, string>, captureLimit: number | null, done: (outcome: ExchangeOutcome) => void) {
    this.#res = res;
    this.#sentAt = sentAt;
    this.#extraHeaders = extraHeaders;
    this.#room = captureLimit;
    this.#done = done;
  }

  /** Stops the call (timeout, the user left); effective whether or not it reached a socket yet. */
  abort(reason: Error): void {
    if (this.#finished) return;
    this.#abortReason ??= reason;
    this.#controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx informational answers are not relayed; the final answer follows.
    if (statusCode < 200) return;
    this.#status = statusCode;
    const out = relayedResponseHeaders(headers);
    Object.assign(out, this.#extraHeaders);
    this.#res.writeHead(statusCode, out);
    this.#streamed = String(headers['content-type'] ?? '').includes('text/event-stream');
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#room !== null) this.#keep(chunk);
    if (this.#streamed) {
      this.#write(controller, chunk);
      return;
    }
    // A whole answer: each chunk is written when the next arrives, so the last one goes out
    // with the end of the response (one write instead of two).
    const held = this.#held;
    this.#held = chunk;
    if (held !== undefined) this.#write(controller, held);
  }

  onResponseEnd(): void {
    const endAt = performance.now() - this.#sentAt;
    if (this.#held === undefined) this.#res.end();
    else this.#res.end(this.#held);
    this.#finish(null, endAt);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#finish(this.#abortReason ?? error, performance.now() - this.#sentAt);
  }

  #keep(chunk: Buffer): void {
    if (chunk.length > (this.#room ?? 0)) {
      this.#room = null;
      this.#overflowed = true;
      this.#chunks = [];
      this.#chunkTimes = [];
      return;
    }
    this.#room = (this.#room ?? 0) - chunk.length;
    this.#chunks.push(chunk);
    if (this.#streamed) this.#chunkTimes.push(performance.now() - this.#sentAt);
  }

  #write(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#res.write(chunk) || this.#paused) return;
    this.#paused = true;
    controller.pause();
    this.#res.once('drain', () => {
      this.#paused = false;
      controller.resume();
    });
  }

  #finish(error: unknown, endAt: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#done({ status: this.#status, streamed: this.#streamed, error, chunks: this.#chunks, chunkTimes: this.#chunkTimes, overflowed: this.#overflowed, endAt });
  }
}
