import type { SimTtft } from './profile.js';
import type { RandomSource } from './random.js';
import { normal } from './random.js';

// z-score of the 99th percentile of a standard normal.
const Z99 = 2.3263478740408408;

/**
 * Draws a time to first token (ms) from the lognormal whose median and 99th percentile
 * are the profile's: mu = ln(median), sigma = (ln(p99) - ln(median)) / z99. Uses
 * `Math.random` by default: latency is noise, not part of the deterministic answer.
 * Capped at 10 × p99 so a freak draw cannot stall a test run.
 */
export function sampleTtftMs(ttft: SimTtft, random: RandomSource = Math.random): number {
  if (ttft.median <= 0) return 0;
  const sigma = ttft.p99 > ttft.median ? (Math.log(ttft.p99) - Math.log(ttft.median)) / Z99 : 0;
  const draw = Math.exp(Math.log(ttft.median) + sigma * normal(random));
  return Math.min(draw, 10 * ttft.p99);
}

/** Time to decode `tokens` tokens at `tokensPerSecond`, in ms. */
export function decodeMs(tokens: number, tokensPerSecond: number): number {
  return (tokens / tokensPerSecond) * 1000;
}
