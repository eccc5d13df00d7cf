import type { Redis } from 'ioredis';

/** One side of a pair as kept in Redis: the raw event JSON and where it was read. */
export interface StoredSide {
  event: string;
  topic: string;
  partition: number;
  offset: string;
}

/**
 * Keys of one request share the hash tag `{requestId}`, so each script touches one Redis
 * Cluster slot:
 * - `…:stable`  the stable side (string, TTL = window)
 * - `…:pending` candidate sides waiting for stable (hash `experiment\0arm` → side)
 * - `…:done`    pairs handed to the evaluation queue or expired (set)
 */
const OFFER_STABLE = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local pending = redis.call('HGETALL', KEYS[2])
local out = {}
for i = 1, #pending, 2 do
  if redis.call('SISMEMBER', KEYS[3], pending[i]) == 0 then
    table.insert(out, pending[i])
    table.insert(out, pending[i + 1])
  end
end
return out
`;

const OFFER_CANDIDATE = `
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return {'done'} end
local stable = redis.call('GET', KEYS[1])
if stable then return {'paired', stable} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {'waiting'}
`;

const MARK_DONE = `
local added = redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
return added
`;

// The deadline entry, not the pending hash (which may have expired by TTL while no sweeper
// ran), is the record that a candidate waited; only a finished pair is skipped.
const EXPIRE_PENDING = `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`;

export type CandidateOffer = { state: 'done' } | { state: 'waiting' } | { state: 'paired'; stable: StoredSide };

export interface JoinStateOptions {
  redis: Redis;
  keyPrefix: string;
  windowMs: number;
  /** How long a finished pair is remembered, to absorb redeliveries. @defaultValue 7 days */
  doneTtlMs?: number;
}

/** Pairing state in Redis; every update is one atomic script. */
export class JoinState {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #windowMs: number;
  readonly #doneTtlMs: number;

  constructor(options: JoinStateOptions) {
    this.#redis = options.redis;
    this.#prefix = options.keyPrefix;
    this.#windowMs = options.windowMs;
    this.#doneTtlMs = options.doneTtlMs ?? 7 * 24 * 3600_000;
  }

  /** Stores the stable side and returns the candidate sides that were waiting for it. */
  async offerStable(requestId: string, side: StoredSide): Promise<Array<{ experimentId: string; arm: string; side: StoredSide }>> {
    const keys = this.#keys(requestId);
    const raw = (await this.#redis.eval(OFFER_STABLE, 3, ...keys, JSON.stringify(side), this.#windowMs)) as string[];
    const out: Array<{ experimentId: string; arm: string; side: StoredSide }> = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const [experimentId = '', arm = ''] = (raw[i] ?? '').split('\u0000');
      out.push({ experimentId, arm, side: JSON.parse(raw[i + 1] ?? '{}') as StoredSide });
    }
    return out;
  }

  /** Pairs a candidate side with the stable side, or keeps it waiting until the window ends. */
  async offerCandidate(requestId: string, experimentId: string, arm: string, side: StoredSide): Promise<CandidateOffer> {
    const keys = this.#keys(requestId);
    const raw = (await this.#redis.eval(OFFER_CANDIDATE, 3, ...keys, field(experimentId, arm), JSON.stringify(side), this.#windowMs * 2)) as string[];
    if (raw[0] === 'paired') return { state: 'paired', stable: JSON.parse(raw[1] ?? '{}') as StoredSide };
    if (raw[0] === 'done') return { state: 'done' };
    await this.#redis.zadd(this.#deadlinesKey(), Date.now() + this.#windowMs, deadlineMember(requestId, experimentId, arm));
    return { state: 'waiting' };
  }

  /** Records that a pair reached the evaluation queue; later redeliveries are ignored. */
  async markDone(requestId: string, experimentId: string, arm: string): Promise<void> {
    const [, pending, done] = this.#keys(requestId);
    await this.#redis.eval(MARK_DONE, 2, pending, done, field(experimentId, arm), this.#doneTtlMs);
    await this.#redis.zrem(this.#deadlinesKey(), deadlineMember(requestId, experimentId, arm));
  }

  /**
   * Claims candidate sides whose window passed without a stable side. Each is returned to
   * exactly one caller, even with several join instances sweeping.
   */
  async expire(now = Date.now(), limit = 500): Promise<Array<{ requestId: string; experimentId: string; arm: string }>> {
    const members = await this.#redis.zrangebyscore(this.#deadlinesKey(), '-inf', now, 'LIMIT', 0, limit);
    const expired: Array<{ requestId: string; experimentId: string; arm: string }> = [];
    for (const member of members) {
      if ((await this.#redis.zrem(this.#deadlinesKey(), member)) === 0) continue;
      const [requestId = '', experimentId = '', arm = ''] = JSON.parse(member) as string[];
      const [, pending, done] = this.#keys(requestId);
      const claimed = await this.#redis.eval(EXPIRE_PENDING, 2, pending, done, field(experimentId, arm), this.#doneTtlMs);
      if (claimed === 1) expired.push({ requestId, experimentId, arm });
    }
    return expired;
  }

  #keys(requestId: string): [string, string, string] {
    const base = `${this.#prefix}:join:{${requestId}}`;
    return [`${base}:stable`, `${base}:pending`, `${base}:done`];
  }

  #deadlinesKey(): string {
    return `${this.#prefix}:join:deadlines`;
  }
}

function field(experimentId: string, arm: string): string {
  return `${experimentId}\u0000${arm}`;
}

function deadlineMember(requestId: string, experimentId: string, arm: string): string {
  return JSON.stringify([requestId, experimentId, arm]);
}
