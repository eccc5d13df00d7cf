import type { ChatCallResult } from './chat-client.js';

/**
 * Whether a failed model call is worth calling again: connection errors, 5xx and 429 are; timeouts
 * and bad answers are not (they would only load the GPU again).
 */
export function isRetryableCall(result: ChatCallResult): boolean {
  if (result.outcome === 'ok') return false;
  if (result.error?.code === 'connect_error') return true;
  return result.status !== null && (result.status === 429 || result.status >= 500);
}

/**
 * The wait before retry `attempt` (1 for the first retry): full-jitter exponential backoff, or
 * the server's Retry-After when it sent one; null when the server asked for a longer wait than
 * `maxDelayMs` (the call is then not retried: retrying sooner than asked is what a rate limit
 * punishes).
 */
export function callRetryDelayMs(attempt: number, options: { baseDelayMs: number; maxDelayMs: number }, retryAfterMs: number | null, random = Math.random): number | null {
  if (retryAfterMs !== null) return retryAfterMs > options.maxDelayMs ? null : retryAfterMs;
  return Math.round(random() * Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1)));
}
