import { OUTCOMES, PENDING, type Outcome, type OutcomeState } from '@shadow-replay/contracts';
import type { Redis } from 'ioredis';
import { RedisScript } from './redis.js';

/**
 * One Lua script moves a request's state and its counters together, so redelivered events
 * never count twice and a final outcome is never overwritten:
 * - `consume`: first sight of a request in an arm; sets its state (pending or a final outcome
 *   decided on the spot) and counts it consumed. Seen before: no change.
 * - `settle`: pending → final outcome. Already final: no change. Never consumed: counts it
 *   consumed too, so the table still balances and the anomaly stays visible as consumed.
 *   A final outcome drops the request's "sent" mark (KEYS[4]), which only pending ones need.
 * A reason (ARGV[7], e.g. the budget limit behind `shed_budget`) is counted in KEYS[5] as
 * `outcome/reason`, with the outcome, so it too counts once per request.
 * Returns the state the request had before the call ('' when none).
 */
const TRANSITION = new RedisScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
local mode = ARGV[4]
if old and (mode == 'consume' or old ~= ARGV[5]) then return old end
if old == ARGV[2] then return old end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if old then
  redis.call('HINCRBY', KEYS[2], old, -1)
else
  redis.call('HINCRBY', KEYS[2], 'consumed', 1)
end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('SADD', KEYS[3], ARGV[6])
if ARGV[2] ~= ARGV[5] then redis.call('HDEL', KEYS[4], ARGV[1]) end
local ttl = tonumber(ARGV[3])
if ARGV[7] ~= '' then
  redis.call('HINCRBY', KEYS[5], ARGV[2] .. '/' .. ARGV[7], 1)
  redis.call('EXPIRE', KEYS[5], ttl)
end
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

export interface OutcomeStoreOptions {
  redis: Redis;
  /** @defaultValue `shadow` */
  keyPrefix?: string;
  /** How long accounting is kept after the last change. @defaultValue 7 days */
  ttlSeconds?: number;
}

/** Per-experiment, per-arm accounting of request outcomes in Redis (DESIGN §3). */
export class OutcomeStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttl: number;

  constructor(options: OutcomeStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.keyPrefix ?? 'shadow';
    this.#ttl = options.ttlSeconds ?? 7 * 24 * 3600;
  }

  /** Records the first sight of a request; `state` is pending or an outcome decided at once. */
  consume(experimentId: string, arm: string, requestId: string, state: OutcomeState = PENDING): Promise<string> {
    return this.#transition(experimentId, arm, requestId, state, 'consume');
  }

  /**
   * Moves a pending request to its final outcome; `reason` (such as the budget limit reached)
   * is counted with it, see {@link reasons}.
   */
  settle(experimentId: string, arm: string, requestId: string, outcome: Outcome, reason = ''): Promise<string> {
    return this.#transition(experimentId, arm, requestId, outcome, 'settle', reason);
  }

  /** Requests counted with a reason, by outcome: `{ shed_budget: { cost: 3, end_time: 1 } }`. */
  async reasons(experimentId: string, arm: string): Promise<Record<string, Record<string, number>>> {
    const raw = await this.#redis.hgetall(this.#keys(experimentId, arm)[3]);
    const result: Record<string, Record<string, number>> = {};
    for (const [field, value] of Object.entries(raw)) {
      const slash = field.indexOf('/');
      const outcome = field.slice(0, slash);
      result[outcome] = { ...result[outcome], [field.slice(slash + 1)]: Number(value) };
    }
    return result;
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
    const counts = { consumed: 0, [PENDING]: 0 } as OutcomeCounts;
    for (const outcome of OUTCOMES) counts[outcome] = 0;
    for (const [name, value] of Object.entries(raw)) counts[name as OutcomeState] = Number(value);
    return counts;
  }

  async allCounts(experimentId: string): Promise<Record<string, OutcomeCounts>> {
    const result: Record<string, OutcomeCounts> = {};
    for (const arm of await this.arms(experimentId)) result[arm] = await this.counts(experimentId, arm);
    return result;
  }

  async #transition(experimentId: string, arm: string, requestId: string, state: OutcomeState, mode: 'consume' | 'settle', reason = ''): Promise<string> {
    const [states, counts, sent, reasons] = this.#keys(experimentId, arm);
    const result = await TRANSITION.run(this.#redis, 5, states, counts, this.#armsKey(experimentId), sent, reasons, requestId, state, this.#ttl, mode, PENDING, arm, reason);
    return String(result);
  }

  // The experiment id is the hash tag, so one experiment's keys share a Redis Cluster slot.
  #keys(experimentId: string, arm: string): [string, string, string, string] {
    const base = `${this.#prefix}:outcomes:{${experimentId}}:${arm}`;
    return [`${base}:state`, `${base}:counts`, `${base}:sent`, `${base}:reasons`];
  }

  #armsKey(experimentId: string): string {
    return `${this.#prefix}:outcomes:{${experimentId}}:arms`;
  }
}
