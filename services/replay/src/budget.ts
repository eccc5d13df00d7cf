import { RedisScript } from '@shadow-replay/platform';
import type { Redis } from 'ioredis';

/**
 * Books a request against the arm's budget atomically, so instances together never exceed it:
 * a request is admitted only while requests, tokens and cost spent so far plus its estimate
 * stay within the limits. Actual tokens and cost replace the estimate when the call is over.
 */
const ADMIT = new RedisScript(`
local spent = redis.call('HMGET', KEYS[1], 'requests', 'tokens', 'cost')
local requests = tonumber(spent[1] or '0')
local tokens = tonumber(spent[2] or '0')
local cost = tonumber(spent[3] or '0')
if ARGV[1] ~= '' and requests + 1 > tonumber(ARGV[1]) then return 'requests' end
if ARGV[2] ~= '' and tokens + tonumber(ARGV[4]) > tonumber(ARGV[2]) then return 'tokens' end
if ARGV[3] ~= '' and cost + tonumber(ARGV[5]) > tonumber(ARGV[3]) then return 'cost' end
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HINCRBYFLOAT', KEYS[1], 'tokens', ARGV[4])
redis.call('HINCRBYFLOAT', KEYS[1], 'cost', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return ''
`);

export interface BudgetLimits {
  maxRequests?: number | undefined;
  maxTokens?: number | undefined;
  maxCost?: number | undefined;
  /** ms epoch */
  endAt?: number | undefined;
}

export type BudgetReason = 'requests' | 'tokens' | 'cost' | 'end_time';

export interface Spend {
  tokens: number;
  cost: number;
}

export class Budget {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #limits: BudgetLimits;

  constructor(options: { redis: Redis; key: string; limits: BudgetLimits }) {
    this.#redis = options.redis;
    this.#key = options.key;
    this.#limits = options.limits;
  }

  get unlimited(): boolean {
    const l = this.#limits;
    return l.maxRequests === undefined && l.maxTokens === undefined && l.maxCost === undefined && l.endAt === undefined;
  }

  /** The end time has passed: nothing more is sent. */
  ended(now = Date.now()): boolean {
    return this.#limits.endAt !== undefined && now >= this.#limits.endAt;
  }

  /** Milliseconds left until the end time (0 once passed); undefined without one. */
  msUntilEnd(now = Date.now()): number | undefined {
    return this.#limits.endAt === undefined ? undefined : Math.max(0, this.#limits.endAt - now);
  }

  /** Admits a request with its estimate, or says which limit it would break. */
  async admit(estimate: Spend, now = Date.now()): Promise<BudgetReason | null> {
    if (this.ended(now)) return 'end_time';
    if (this.unlimited) return null;
    const l = this.#limits;
    const result = String(
      await ADMIT.run(this.#redis, 1, this.#key, l.maxRequests ?? '', l.maxTokens ?? '', l.maxCost ?? '', estimate.tokens, estimate.cost, 30 * 24 * 3600_000),
    );
    return result === '' ? null : (result as BudgetReason);
  }

  /** Replaces the estimate by what the call really used. */
  async settle(estimate: Spend, actual: Spend): Promise<void> {
    if (this.unlimited) return;
    await this.#redis
      .multi()
      .hincrbyfloat(this.#key, 'tokens', actual.tokens - estimate.tokens)
      .hincrbyfloat(this.#key, 'cost', actual.cost - estimate.cost)
      .exec();
  }

  /** Gives back an admitted request that was never sent. */
  async refund(estimate: Spend): Promise<void> {
    if (this.unlimited) return;
    await this.#redis
      .multi()
      .hincrby(this.#key, 'requests', -1)
      .hincrbyfloat(this.#key, 'tokens', -estimate.tokens)
      .hincrbyfloat(this.#key, 'cost', -estimate.cost)
      .exec();
  }

  async spent(): Promise<{ requests: number; tokens: number; cost: number }> {
    const raw = await this.#redis.hgetall(this.#key);
    return { requests: Number(raw.requests ?? 0), tokens: Number(raw.tokens ?? 0), cost: Number(raw.cost ?? 0) };
  }
}
