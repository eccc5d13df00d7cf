/**
 * An open-loop load generator: request i is due at t0 + i / rate, whether or not the earlier
 * ones were answered (like wrk2, unlike autocannon's `overallRate`, which lets every connection
 * send its share of each second back to back when the second starts, so "500 req/s" arrives
 * as one burst per second). Latency is measured per request from the moment it is handed to
 * the client pool (waiting for a free connection included) to the last byte of the body; for
 * streamed answers the arrival of every content chunk is recorded too.
 */
import { performance } from 'node:perf_hooks';
import { samplePrompt } from '@shadow-replay/cli';
import type { Pool } from 'undici';
import { assertLoopback } from './bench-worker-rpc.js';

/** A content delta with at least one character; the role chunk's `"content":""` does not count. */
const CONTENT_DELTA = /"content":"[^"]/;

export const StreamMode = { none: 'none', half: 'half', all: 'all' } as const;
export type StreamMode = (typeof StreamMode)[keyof typeof StreamMode];

export interface OpenLoopOptions {
  /** Base URL on this machine (loopback only), possibly with a path prefix (`http://127.0.0.1:8080/plain`). */
  baseUrl: string;
  /** Requests per second, evenly spaced. */
  rate: number;
  seconds: number;
  /** Prompt index of the first request (`samplePrompt(index)`): two runs with the same range send the same bodies. */
  firstIndex: number;
  /** Request ids are `${idPrefix}-${index}`, sent as `x-request-id`. */
  idPrefix: string;
  /** Which requests ask for a streamed answer: none, every other one (the demo's traffic) or all. */
  stream: StreamMode;
  /** Limit per request, waiting for a connection included; a request over it counts as failed (`timeout`). */
  timeoutMs: number;
  /** Record the arrival of every content chunk of streamed answers (time to first chunk and gaps). */
  chunkTiming: boolean;
}

export interface OpenLoopResult {
  sent: number;
  ok: number;
  failed: number;
  /** Failures by HTTP status or error code. */
  failures: Record<string, number>;
  /** Prompt index, latency and (epoch ms) send time of every successful request, in completion order. */
  indices: number[];
  latenciesMs: number[];
  sentAtEpochMs: number[];
  /** Epoch ms of each failure, to place it before or after an event (a cut). */
  failedAtEpochMs: number[];
  /** How late each request was handed to the pool against its due time: the generator's own lag. */
  lateMs: number[];
  /** Streamed answers with `chunkTiming`: send → first content chunk, and the gaps between successive content chunks. */
  firstChunkMs: number[];
  chunkGapsMs: number[];
  /** `performance.timeOrigin`-based epoch ms of the first due time, and of the last answer read. */
  startedAtEpochMs: number;
  lastEndAtEpochMs: number;
  /** First due time → last answer read. */
  elapsedMs: number;
  /** Requests in flight (queued in the pool included), at most. */
  maxInFlight: number;
  /** Connections the pool held open, at most (sampled every 100 ms). */
  maxConnections: number;
}

/**
 * Sends `rate × seconds` chat completions through `pool` (which must point at `baseUrl`'s
 * origin) and resolves when every one was answered or failed. Bodies are the demo's prompts.
 */
export async function runOpenLoop(pool: Pool, options: OpenLoopOptions): Promise<OpenLoopResult> {
  const base = assertLoopback(options.baseUrl);
  const path = `${base.pathname.replace(/\/$/, '')}/v1/chat/completions`;
  const count = Math.max(1, Math.round(options.rate * options.seconds));
  const intervalMs = 1000 / options.rate;
  const result: OpenLoopResult = {
    sent: 0,
    ok: 0,
    failed: 0,
    failures: {},
    indices: [],
    latenciesMs: [],
    sentAtEpochMs: [],
    failedAtEpochMs: [],
    lateMs: [],
    firstChunkMs: [],
    chunkGapsMs: [],
    startedAtEpochMs: 0,
    lastEndAtEpochMs: 0,
    elapsedMs: 0,
    maxInFlight: 0,
    maxConnections: 0,
  };
  let inFlight = 0;
  const pending: Array<Promise<void>> = [];
  const epoch = (at: number) => performance.timeOrigin + at;
  const sampler = setInterval(() => {
    result.maxConnections = Math.max(result.maxConnections, pool.stats.connected);
  }, 100);

  const send = async (index: number): Promise<void> => {
    const streamed = options.stream === StreamMode.all || (options.stream === StreamMode.half && index % 2 === 0);
    const body = JSON.stringify({ model: 'sim', stream: streamed, messages: [{ role: 'user', content: samplePrompt(index) }] });
    const headers = { 'content-type': 'application/json', 'x-request-id': `${options.idPrefix}-${index}`, 'x-tenant-id': `tenant-${index % 3}` };
    inFlight++;
    result.maxInFlight = Math.max(result.maxInFlight, inFlight);
    result.sent++;
    const dispatchedAt = performance.now();
    try {
      const response = await pool.request({ path, method: 'POST', headers, body, signal: AbortSignal.timeout(options.timeoutMs) });
      let chunks: number[] | null = null;
      if (streamed && options.chunkTiming) chunks = await readChunkTimes(response.body);
      else await response.body.arrayBuffer();
      const endedAt = performance.now();
      result.lastEndAtEpochMs = Math.max(result.lastEndAtEpochMs, epoch(endedAt));
      if (response.statusCode >= 400) {
        fail(`http_${response.statusCode}`, endedAt);
        return;
      }
      result.ok++;
      result.indices.push(index);
      result.latenciesMs.push(endedAt - dispatchedAt);
      result.sentAtEpochMs.push(epoch(dispatchedAt));
      if (chunks !== null && chunks.length > 0) {
        result.firstChunkMs.push((chunks[0] ?? 0) - dispatchedAt);
        for (let at = 1; at < chunks.length; at++) result.chunkGapsMs.push((chunks[at] ?? 0) - (chunks[at - 1] ?? 0));
      }
    } catch (error) {
      const endedAt = performance.now();
      result.lastEndAtEpochMs = Math.max(result.lastEndAtEpochMs, epoch(endedAt));
      fail(errorCode(error), endedAt);
    } finally {
      inFlight--;
    }
  };
  const fail = (reason: string, at: number) => {
    result.failed++;
    result.failures[reason] = (result.failures[reason] ?? 0) + 1;
    result.failedAtEpochMs.push(epoch(at));
  };

  const t0 = performance.now() + 5;
  result.startedAtEpochMs = epoch(t0);
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      // A late timer sends everything that has come due: the offered load never drifts below the rate.
      while (next < count && t0 + next * intervalMs <= now) {
        const dueAt = t0 + next * intervalMs;
        result.lateMs.push(now - dueAt);
        pending.push(send(options.firstIndex + next));
        next++;
      }
      if (next >= count) {
        resolve();
        return;
      }
      setTimeout(tick, Math.max(0, t0 + next * intervalMs - performance.now()));
    };
    tick();
  });
  await Promise.all(pending);
  clearInterval(sampler);
  result.maxConnections = Math.max(result.maxConnections, pool.stats.connected);
  result.elapsedMs = result.lastEndAtEpochMs - result.startedAtEpochMs;
  return result;
}

/** `performance.now()` at which each SSE event carrying content was complete (the read that finished it). */
async function readChunkTimes(body: AsyncIterable<unknown>): Promise<number[]> {
  const times: number[] = [];
  let carry = '';
  for await (const chunk of body) {
    const at = performance.now();
    carry += (chunk as Buffer).toString('utf8');
    let end = carry.indexOf('\n\n');
    while (end !== -1) {
      if (CONTENT_DELTA.test(carry.slice(0, end))) times.push(at);
      carry = carry.slice(end + 2);
      end = carry.indexOf('\n\n');
    }
  }
  return times;
}

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    if ('name' in error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'timeout';
    if ('code' in error && typeof error.code === 'string') return error.code;
  }
  return error instanceof Error ? error.name : 'unknown';
}
