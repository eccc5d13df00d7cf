import type { Redis } from 'ioredis';
import { RedisScript } from './redis.js';

/**
 * GCRA as a reservation: each call books the next free slot of the arm (`cost` × interval after
 * the previous one) and is told how long to wait for it. All instances book in the same Redis
 * key, on Redis's clock, so together they keep one even pace: no bursts, no overshoot.
 */
const RESERVE = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tat, now)
local nextTat = start + tonumber(ARGV[1])
redis.call('SET', KEYS[1], nextTat, 'PX', math.ceil(math.max(1000, nextTat - now + 60000)))
return start - now
`);

/** Moves the arm's next free slot to at least `ARGV[1]` ms from now (a Retry-After for every instance). */
const HOLD_OFF = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], tat, 'PX', math.ceil(math.max(1000, tat - now + 60000)))
return tat - now
`);

/** Extends a holder's lease; a holder that lost its slot (lease expired) is not re-added. */
const RENEW = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
`);

/** A distributed semaphore: holders are members of a sorted set scored by their lease's end. */
const ACQUIRE = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 60000)
  return 1
end
return 0
`);

export interface ArmLimits {
  rps?: number | undefined;
  tokensPerMinute?: number | undefined;
  concurrency: number;
}

export interface RateLimiterOptions {
  redis: Redis;
  /** Prefix of this arm's keys, e.g. `shadow:rate:{exp}:arm`. */
  key: string;
  limits: ArmLimits;
  /**
   * Lease of a concurrency slot. The holder renews it every third of this while its call runs,
   * so a crashed instance's slots come free within one lease. @defaultValue 15000
   */
  leaseMs?: number;
}

let holderSequence = 0;

/** Pace and concurrency of one arm, shared by every replay instance through Redis. */
export class RateLimiter {
  readonly #options: RateLimiterOptions;
  readonly #instance = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  #rps: number | undefined;

  constructor(options: RateLimiterOptions) {
    this.#options = options;
    this.#rps = options.limits.rps;
  }

  /** The pace now, requests/s (undefined: unpaced). */
  get rps(): number | undefined {
    return this.#rps;
  }

  /** Changes the pace (adaptive pacing); slots already booked keep their times. */
  setRps(rps: number | undefined): void {
    this.#rps = rps;
  }

  /** Books no request-rate slot sooner than `ms` from now, for every instance (the arm's Retry-After). */
  async holdOff(ms: number): Promise<void> {
    await HOLD_OFF.run(this.#options.redis, 1, `${this.#options.key}:rps`, Math.max(0, Math.round(ms)));
  }

  /**
   * Waits for the arm's next slot (requests/s and tokens/min) and a concurrency slot; call the
   * returned function when the call is over.
   */
  async acquire(tokens: number, signal?: AbortSignal): Promise<() => Promise<void>> {
    const { redis, key, limits } = this.#options;
    const holder = `${this.#instance}-${++holderSequence}`;
    const leaseMs = this.#options.leaseMs ?? 15_000;
    // The concurrency slot first, then the pace: booking a rate slot before waiting for
    // concurrency would let calls that waited long go out back to back (a burst).
    for (let attempt = 0; ; attempt++) {
      const got = await ACQUIRE.run(redis, 1, `${key}:inflight`, limits.concurrency, holder, leaseMs);
      if (got === 1) break;
      // Jittered polling: slots free up when calls end, on any instance.
      await sleep(Math.min(100, 5 + attempt * 5) * (0.5 + Math.random()), signal);
    }
    try {
      const waits: number[] = [];
      const rps = this.#rps;
      if (rps !== undefined) waits.push(Number(await RESERVE.run(redis, 1, `${key}:rps`, 1000 / rps)));
      if (limits.tokensPerMinute !== undefined) waits.push(Number(await RESERVE.run(redis, 1, `${key}:tpm`, (60_000 * Math.max(1, tokens)) / limits.tokensPerMinute)));
      const wait = Math.max(0, ...waits);
      if (wait > 0) await sleep(wait, signal);
    } catch (error) {
      // The slot is ours until the call: give it back, or it blocks the arm for a whole lease.
      await redis.zrem(`${key}:inflight`, holder).catch(() => undefined);
      throw error;
    }
    const renewal = setInterval(() => {
      RENEW.run(redis, 1, `${key}:inflight`, holder, leaseMs).catch(() => undefined);
    }, leaseMs / 3);
    renewal.unref();
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      clearInterval(renewal);
      await redis.zrem(`${key}:inflight`, holder);
    };
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
