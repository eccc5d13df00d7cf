/**
 * A closed-loop load generator: `concurrency` workers each send one chat completion, wait for
 * the whole answer, and send the next, until `count` were sent. Latency is measured per
 * request around the HTTP call, from just before it is issued to the last byte of the body.
 */
import { performance } from 'node:perf_hooks';
import { samplePrompt } from '@shadow-replay/cli';
import { Pool } from 'undici';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface LoadOptions {
  /** Base URL of an OpenAI-compatible endpoint on this machine (loopback only). */
  baseUrl: string;
  count: number;
  concurrency: number;
  /** Request ids are `${idPrefix}-${index}`, sent as `x-request-id`. */
  idPrefix: string;
  /** No new request starts after this long; in-flight ones finish or time out. */
  phaseDeadlineMs: number;
  /** Per-request limit for headers and for the gap between body chunks. */
  requestTimeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (done: number) => void;
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  /** Failures by HTTP status or error code. */
  failures: Record<string, number>;
  /** Latency of each successful request, in completion order. */
  latenciesMs: number[];
  /** `performance.now()` just before the first request was issued. */
  firstStartAt: number;
  /** `performance.now()` when the last response body was read to its end. */
  lastEndAt: number;
  /** True when the phase deadline or the signal stopped it before `count` were sent. */
  cutShort: boolean;
}

/**
 * Sends the built-in demo traffic (`samplePrompt`, half of the requests streamed, three
 * tenants) exactly as `sendTraffic` does, so gateway and direct runs carry the same bodies.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const base = new URL(options.baseUrl);
  if (!LOOPBACK_HOSTS.has(base.hostname)) throw new Error(`bench load: ${options.baseUrl} is not a loopback address; benchmarks only talk to this machine`);
  const path = `${base.pathname.replace(/\/$/, '')}/v1/chat/completions`;
  // One pool per phase, sized to the concurrency, so every phase starts from the same client state.
  const pool = new Pool(base.origin, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
  const result: LoadResult = { sent: 0, ok: 0, failed: 0, failures: {}, latenciesMs: [], firstStartAt: 0, lastEndAt: 0, cutShort: false };
  const fail = (reason: string) => {
    result.failed++;
    result.failures[reason] = (result.failures[reason] ?? 0) + 1;
  };
  let next = 0;
  const deadline = performance.now() + options.phaseDeadlineMs;
  const worker = async () => {
    while (next < options.count) {
      if (options.signal?.aborted === true || performance.now() > deadline) {
        result.cutShort = true;
        return;
      }
      const index = next++;
      const body = JSON.stringify({ model: 'sim', stream: index % 2 === 0, messages: [{ role: 'user', content: samplePrompt(index) }] });
      const headers = { 'content-type': 'application/json', 'x-request-id': `${options.idPrefix}-${index}`, 'x-tenant-id': `tenant-${index % 3}` };
      result.sent++;
      const startedAt = performance.now();
      try {
        const response = await pool.request({ path, method: 'POST', headers, body, headersTimeout: options.requestTimeoutMs, bodyTimeout: options.requestTimeoutMs });
        await response.body.text();
        const endedAt = performance.now();
        result.lastEndAt = Math.max(result.lastEndAt, endedAt);
        if (response.statusCode < 400) {
          result.ok++;
          result.latenciesMs.push(endedAt - startedAt);
        } else {
          fail(`http_${response.statusCode}`);
        }
      } catch (error) {
        result.lastEndAt = Math.max(result.lastEndAt, performance.now());
        fail(errorCode(error));
      }
      options.onProgress?.(result.ok + result.failed);
    }
  };
  result.firstStartAt = performance.now();
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, options.count) }, worker));
  } finally {
    await pool.close();
  }
  return result;
}

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.name : 'unknown';
}
