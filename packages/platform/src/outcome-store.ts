import { OUTCOMES, PENDING, type Outcome, type OutcomeState } from '@shadow-replay/contracts';
import type { Redis } from 'ioredis';
import { PlatformError, PlatformErrorCode } from './errors.js';
import { RedisScript } from './redis.js';

/**
 * One Lua script moves a request's state and its counters together, so redelivered events
 * never count twice and a final outcome is never overwritten:
 * - `consume`: first sight of a request in an arm; sets its state (pending or a final outcome
 *   decided on the spot) and counts it consumed. Seen before: no change.
 * - `settle`: pending → final outcome. Already final: no change. Never consumed: counts it
 *   consumed too, so the table still balances and the anomaly stays visible as consumed.
 *   A final outcome drops the request's "sent" mark (KEYS[4]), which only pending ones need.
 * The same moves are made in the counters of the request's minute (KEYS[8]), when it has one:
 * `consume` records the minute of the request's occurredAt (KEYS[5], and the minute in the index
 * KEYS[6]); `settle` is given the minute its caller read from KEYS[5] and refuses with
 * MINUTE_CHANGED when it no longer matches (a consume ran in between), so the caller reads again.
 * A reason (ARGV[9], e.g. the budget limit behind `shed_budget`) is counted in KEYS[7] as
 * `outcome/reason`, with the outcome, so it too counts once per request.
 * Returns the state the request had before the call ('' when none).
 */
const TRANSITION = new RedisScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
local mode = ARGV[4]
if old and (mode == 'consume' or old ~= ARGV[5]) then return old end
if old == ARGV[2] then return old end
local minute = ARGV[7]
if mode == 'settle' and (redis.call('HGET', KEYS[5], ARGV[1]) or '') ~= minute then return ARGV[8] end
local ttl = tonumber(ARGV[3])
if minute ~= '' then
  if old then
    redis.call('HINCRBY', KEYS[8], old, -1)
  else
    redis.call('HINCRBY', KEYS[8], 'consumed', 1)
    redis.call('HSET', KEYS[5], ARGV[1], minute)
    redis.call('ZADD', KEYS[6], minute, minute)
  end
  redis.call('HINCRBY', KEYS[8], ARGV[2], 1)
  redis.call('EXPIRE', KEYS[5], ttl)
  redis.call('EXPIRE', KEYS[6], ttl)
  redis.call('EXPIRE', KEYS[8], ttl)
end
if ARGV[9] ~= '' then
  redis.call('HINCRBY', KEYS[7], ARGV[2] .. '/' .. ARGV[9], 1)
  redis.call('EXPIRE', KEYS[7], ttl)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if old then
  redis.call('HINCRBY', KEYS[2], old, -1)
else
  redis.call('HINCRBY', KEYS[2], 'consumed', 1)
end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('SADD', KEYS[3], ARGV[6])
if ARGV[2] ~= ARGV[5] then redis.call('HDEL', KEYS[4], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return old or ''
`);

/** Marks a pending request whose candidate answer is published; a final state needs no mark. */
const MARK_SENT = new RedisScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
`);

export type OutcomeCounts = Record<OutcomeState | 'consumed', number>;

/**
 * Width of the time buckets the store also counts outcomes in, by the request's occurredAt: a
 * report over a window sums whole minutes (see {@link OutcomeStore.windowCounts}).
 */
export const OUTCOME_BUCKET_MS = 60_000;

/** The start of the bucket `time` (ms since the epoch) falls in. */
export function outcomeBucket(time: number): number {
  return Math.floor(time / OUTCOME_BUCKET_MS) * OUTCOME_BUCKET_MS;
}

// Returned by the transition script when the request's minute changed under a settle.
const MINUTE_CHANGED = '\u0000minute-changed';

export interface OutcomeStoreOptions {
  redis: Redis;
  /** @defaultValue `shadow` */
  keyPrefix?: string;
  /**
   * How long accounting is kept after the last change, the per-minute counters included (each
   * minute's keys expire this long after their own last change). @defaultValue 7 days
   */
  ttlSeconds?: number;
}

/**
 * Per-experiment, per-arm accounting of request outcomes in Redis (DESIGN §3).
 *
 * Besides the experiment's totals, a request whose consume was given its occurredAt is counted in
 * the counters of that minute too, and stays there through every later move, so that a report
 * over a window of whole minutes can balance: its counters and its evaluation records then hold
 * exactly the same requests (those that occurred in the window). Keys, all hash-tagged by the
 * experiment: `<prefix>:outcomes:{<experiment>}:<arm>:minute` (request id → minute, one field per
 * request like `:state`), `…:<arm>:minutes` (a sorted set of the minutes seen) and
 * `…:<arm>:counts:<minute start, ms>`; they expire with `ttlSeconds` like the rest.
 */
export class OutcomeStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttl: number;

  constructor(options: OutcomeStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.keyPrefix ?? 'shadow';
    this.#ttl = options.ttlSeconds ?? 7 * 24 * 3600;
  }

  /**
   * Records the first sight of a request; `state` is pending or an outcome decided at once.
   * `occurredAt` (the request's, ms since the epoch) places it in its minute's counters too;
   * without it the request counts in the experiment's totals only.
   */
  consume(experimentId: string, arm: string, requestId: string, state: OutcomeState = PENDING, occurredAt?: number): Promise<string> {
    const minute = occurredAt === undefined ? '' : String(outcomeBucket(occurredAt));
    return this.#transition(experimentId, arm, requestId, state, 'consume', minute);
  }

  /**
   * Moves a pending request to its final outcome, in its minute's counters too; `reason` (such
   * as the budget limit reached) is counted with it, see {@link reasons}.
   */
  async settle(experimentId: string, arm: string, requestId: string, outcome: Outcome, reason = ''): Promise<string> {
    const minuteKey = this.#keys(experimentId, arm)[3];
    // The minute is fixed by the first consume; the script checks it did not appear in between.
    for (let attempt = 0; ; attempt++) {
      const minute = (await this.#redis.hget(minuteKey, requestId)) ?? '';
      const before = await this.#transition(experimentId, arm, requestId, outcome, 'settle', minute, reason);
      if (before !== MINUTE_CHANGED) return before;
      if (attempt >= 3) {
        throw new PlatformError(PlatformErrorCode.outcomeMinuteContended, `outcome store: the minute of ${experimentId}/${arm}/${requestId} kept changing during settle`, { retryable: true });
      }
    }
  }

  /**
   * Records that a pending request's candidate answer is published, so a redelivery (a crash
   * or a partition handed over before the offset was committed) does not call the candidate
   * again. The mark goes when the request reaches its final outcome.
   */
  async markSent(experimentId: string, arm: string, requestId: string): Promise<void> {
    const [states, , sent] = this.#keys(experimentId, arm);
    await MARK_SENT.run(this.#redis, 2, states, sent, requestId, PENDING, this.#ttl);
  }

  /** Whether a pending request's candidate answer was already published (see {@link markSent}). */
  async wasSent(experimentId: string, arm: string, requestId: string): Promise<boolean> {
    return (await this.#redis.hexists(this.#keys(experimentId, arm)[2], requestId)) === 1;
  }

  async state(experimentId: string, arm: string, requestId: string): Promise<string | null> {
    return this.#redis.hget(this.#keys(experimentId, arm)[0], requestId);
  }

  async arms(experimentId: string): Promise<string[]> {
    return (await this.#redis.smembers(this.#armsKey(experimentId))).sort();
  }

  async counts(experimentId: string, arm: string): Promise<OutcomeCounts> {
    const raw = await this.#redis.hgetall(this.#keys(experimentId, arm)[1]);
    const counts = emptyCounts();
    for (const [name, value] of Object.entries(raw)) counts[name as OutcomeState] = Number(value);
    return counts;
  }

  async allCounts(experimentId: string): Promise<Record<string, OutcomeCounts>> {
    const result: Record<string, OutcomeCounts> = {};
    for (const arm of await this.arms(experimentId)) result[arm] = await this.counts(experimentId, arm);
    return result;
  }

  /**
   * Counters of every arm over the requests that occurred in [from, to), summed over whole
   * minutes: `from` and `to` must be minute boundaries ({@link outcomeBucket}). Requests consumed
   * without an occurredAt are in no minute. An arm with nothing in the window has all zeros.
   */
  async windowCounts(experimentId: string, from: number, to: number): Promise<Record<string, OutcomeCounts>> {
    if (outcomeBucket(from) !== from || outcomeBucket(to) !== to || to < from) {
      throw new PlatformError(PlatformErrorCode.outcomeWindowInvalid, `outcome store: a window must run between minute boundaries, from <= to (got ${from} to ${to})`);
    }
    const result: Record<string, OutcomeCounts> = {};
    for (const arm of await this.arms(experimentId)) {
      const [, , , , minutesKey] = this.#keys(experimentId, arm);
      const minutes = to > from ? await this.#redis.zrangebyscore(minutesKey, from, to - 1) : [];
      const pipeline = this.#redis.pipeline();
      for (const minute of minutes) pipeline.hgetall(this.#minuteCountsKey(experimentId, arm, minute));
      const replies = minutes.length === 0 ? [] : ((await pipeline.exec()) ?? []);
      const counts = emptyCounts();
      for (const [error, raw] of replies) {
        if (error) throw error;
        for (const [name, value] of Object.entries(raw as Record<string, string>)) counts[name as OutcomeState] = (counts[name as OutcomeState] ?? 0) + Number(value);
      }
      result[arm] = counts;
    }
    return result;
  }

  /** Requests counted with a reason, by outcome: `{ shed_budget: { cost: 3, end_time: 1 } }` (whole experiment). */
  async reasons(experimentId: string, arm: string): Promise<Record<string, Record<string, number>>> {
    const raw = await this.#redis.hgetall(this.#keys(experimentId, arm)[5]);
    const result: Record<string, Record<string, number>> = {};
    for (const [field, value] of Object.entries(raw)) {
      const slash = field.indexOf('/');
      const outcome = field.slice(0, slash);
      result[outcome] = { ...result[outcome], [field.slice(slash + 1)]: Number(value) };
    }
    return result;
  }

  async #transition(experimentId: string, arm: string, requestId: string, state: OutcomeState, mode: 'consume' | 'settle', minute: string, reason = ''): Promise<string> {
    const [states, counts, sent, minuteOf, minutes, reasons] = this.#keys(experimentId, arm);
    const keys = [states, counts, this.#armsKey(experimentId), sent, minuteOf, minutes, reasons, ...(minute === '' ? [] : [this.#minuteCountsKey(experimentId, arm, minute)])];
    const result = await TRANSITION.run(this.#redis, keys.length, ...keys, requestId, state, this.#ttl, mode, PENDING, arm, minute, MINUTE_CHANGED, reason);
    return String(result);
  }

  // The experiment id is the hash tag, so one experiment's keys share a Redis Cluster slot.
  #keys(experimentId: string, arm: string): [string, string, string, string, string, string] {
    const base = `${this.#prefix}:outcomes:{${experimentId}}:${arm}`;
    return [`${base}:state`, `${base}:counts`, `${base}:sent`, `${base}:minute`, `${base}:minutes`, `${base}:reasons`];
  }

  #minuteCountsKey(experimentId: string, arm: string, minute: string): string {
    return `${this.#prefix}:outcomes:{${experimentId}}:${arm}:counts:${minute}`;
  }

  #armsKey(experimentId: string): string {
    return `${this.#prefix}:outcomes:{${experimentId}}:arms`;
  }
}

function emptyCounts(): OutcomeCounts {
  const counts = { consumed: 0, [PENDING]: 0 } as OutcomeCounts;
  for (const outcome of OUTCOMES) counts[outcome] = 0;
  return counts;
}
