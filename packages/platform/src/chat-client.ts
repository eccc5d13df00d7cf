import { performance } from 'node:perf_hooks';
import type { ChatRequest, ResponseError } from '@shadow-replay/contracts';
import { request, type Dispatcher } from 'undici';
import { ResponseAssembler, type AssembledResult } from './response-assembler.js';

/** Codes of a failed model call, as recorded in a ResponseEvent's `error.code`. */
export const CallErrorCode = {
  connect: 'connect_error',
  firstTokenTimeout: 'first_token_timeout',
  idleTimeout: 'stream_idle_timeout',
  totalTimeout: 'total_timeout',
  httpStatus: 'http_status',
  malformed: 'malformed_response',
  truncated: 'truncated_stream',
  failed: 'request_failed',
} as const;
export type CallErrorCode = (typeof CallErrorCode)[keyof typeof CallErrorCode];

export interface ChatCallOptions {
  dispatcher: Dispatcher;
  /** Full URL of the chat-completions route. */
  url: string;
  body: ChatRequest;
  headers?: Record<string, string>;
  /**
   * Time allowed from sending until the first chunk carrying content, reasoning or a tool-call
   * delta (DESIGN §4's first token); for an answer that is not streamed, until its headers. Role
   * chunks and SSE comments do not count. @defaultValue 30000
   */
  firstTokenMs?: number;
  /** Longest silence allowed between two pieces of the body, any bytes counting. @defaultValue `firstTokenMs` */
  idleMs?: number;
  /** Time allowed for the whole call. @defaultValue 120000 */
  totalMs?: number;
}

export interface ChatCallResult extends AssembledResult {
  outcome: 'ok' | 'error';
  status: number | null;
  error: ResponseError | null;
  streamed: boolean;
  /** `Retry-After` in milliseconds, when the server sent one. */
  retryAfterMs: number | null;
}

const MAX_ERROR_BODY = 64 * 1024;

/** Calls an OpenAI-compatible endpoint, streaming when the body asks for it, and times it. */
export async function callChatCompletion(options: ChatCallOptions): Promise<ChatCallResult> {
  const firstTokenMs = options.firstTokenMs ?? 30_000;
  const idleMs = options.idleMs ?? firstTokenMs;
  const totalMs = options.totalMs ?? 120_000;
  const streamed = options.body.stream === true;
  const sentAt = performance.now();
  const assembler = new ResponseAssembler(options.body, sentAt, Date.now());
  const controller = new AbortController();
  let timedOut: 'total' | 'first_token' | null = null;
  const timer = setTimeout(() => {
    timedOut ??= 'total';
    controller.abort();
  }, totalMs);
  // Bytes alone do not stop this one: a server can send headers, a role chunk and keep-alive
  // comments forever without producing a token.
  const firstTokenTimer = setTimeout(() => {
    timedOut ??= 'first_token';
    controller.abort();
  }, firstTokenMs);
  let status: number | null = null;
  try {
    const response = await request(options.url, {
      method: 'POST',
      dispatcher: options.dispatcher,
      headers: { ...options.headers, 'content-type': 'application/json', accept: streamed ? 'text/event-stream' : 'application/json' },
      body: JSON.stringify(options.body),
      signal: controller.signal,
      headersTimeout: firstTokenMs,
      bodyTimeout: idleMs,
    });
    status = response.statusCode;
    const contentType = String(response.headers['content-type'] ?? '');
    if (status >= 400 || !contentType.includes('text/event-stream')) clearTimeout(firstTokenTimer);
    if (status >= 400) {
      const text = await readCapped(response.body, MAX_ERROR_BODY);
      assembler.end();
      const retryAfter = parseRetryAfter(response.headers['retry-after']);
      return failure(assembler, streamed, status, CallErrorCode.httpStatus, `HTTP ${status}: ${errorMessage(text)}`, status === 429 || status >= 500, retryAfter);
    }
    if (contentType.includes('text/event-stream')) {
      for await (const chunk of response.body) {
        assembler.feedSse(chunk as Buffer);
        if (assembler.sawFirstToken) clearTimeout(firstTokenTimer);
      }
    } else {
      assembler.feedJson(await readCapped(response.body, 64 * 1024 * 1024));
    }
    assembler.end();
    const result = assembler.result(contentType.includes('text/event-stream'));
    // One unreadable chunk means part of the answer is missing: the answer cannot be compared.
    if (result.malformed) return failure(assembler, streamed, status, CallErrorCode.malformed, 'the response is not valid JSON (or a stream chunk is not)', true, null);
    if (!result.complete) return failure(assembler, streamed, status, CallErrorCode.truncated, 'the stream ended before a finish reason or [DONE]', true, null);
    return { ...result, outcome: 'ok', status, error: null, streamed: contentType.includes('text/event-stream'), retryAfterMs: null };
  } catch (error) {
    assembler.end();
    const classified =
      timedOut === 'first_token'
        ? { code: CallErrorCode.firstTokenTimeout, message: `no content, reasoning or tool-call delta within ${firstTokenMs} ms` }
        : classifyCallError(error, timedOut === 'total', totalMs);
    return failure(assembler, streamed, status, classified.code as CallErrorCode, classified.message, true, null);
  } finally {
    clearTimeout(timer);
    clearTimeout(firstTokenTimer);
  }
}

function failure(assembler: ResponseAssembler, streamed: boolean, status: number | null, code: CallErrorCode, message: string, retryable: boolean, retryAfterMs: number | null): ChatCallResult {
  return { ...assembler.result(streamed), outcome: 'error', status, error: { code, message, retryable }, streamed, retryAfterMs };
}

/** Names a failed call to a model endpoint the same way for the stable and the candidate side. */
export function classifyCallError(error: unknown, timedOut: boolean, totalMs: number): ResponseError {
  if (timedOut) return { code: CallErrorCode.totalTimeout, message: `no complete answer within ${totalMs} ms`, retryable: true };
  const code = (error as { code?: string }).code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return { code: CallErrorCode.firstTokenTimeout, message, retryable: true };
  if (code === 'UND_ERR_BODY_TIMEOUT') return { code: CallErrorCode.idleTimeout, message, retryable: true };
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ENOTFOUND' || code === 'UND_ERR_SOCKET') {
    return { code: CallErrorCode.connect, message: `${code}: ${message}`, retryable: true };
  }
  return { code: CallErrorCode.failed, message, retryable: true };
}

async function readCapped(body: AsyncIterable<unknown>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    if (size < limit) chunks.push(buffer.subarray(0, limit - size));
    size += buffer.length;
  }
  return Buffer.concat(chunks);
}

function errorMessage(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') return parsed.error.message;
  } catch {
    // not JSON: fall back to the raw text
  }
  return text.slice(0, 500);
}

function parseRetryAfter(value: string | string[] | undefined): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return null;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}
