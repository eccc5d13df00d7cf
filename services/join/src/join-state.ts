import { RedisScript } from '@shadow-replay/platform';
import type { Redis } from 'ioredis';

/** One side of a pair as kept in Redis: the raw event JSON and where it was read. */
export interface StoredSide {
  event: string;
  topic: string;
  partition: number;
  offset: string;
  /**
   * Set instead of `event` (which is then empty) when the event was larger than the join's
   * payload limit: the pair is refused, and only this marker and the location are kept.
   */
  tooLargeBytes?: number;
}

/** What the join dead-letters about a pair, once: a late stable or candidate side, or the refusal of an oversized pair. */
export const PairReport = { lateStable: 's', lateCandidate: 'c', tooLarge: 'r' } as const;
export type PairReport = (typeof PairReport)[keyof typeof PairReport];

/**
 * Keys of one request share the hash tag `{requestId}`, so each script touches one Redis
 * Cluster slot:
 * - `…:stable`  the stable side (string, TTL = window)
 * - `…:pending` candidate sides waiting for stable (hash `experiment\0arm` → side)
 * - `…:done`    pairs handed to the evaluation queue, refused or expired (set, TTL 7 days)
 * - `…:expired` tombstones of pairs whose window expired (hash `experiment\0arm` → `x`; TTL
 *   `expiredTtlMs`), so a side arriving afterwards is recognised as late instead of starting a
 *   new wait or a second pair
 * - `…:reports` dead letters written about the request's pairs (hash `report\0experiment\0arm`
 *   → `done`, or the time until which one handler holds the report; TTL `expiredTtlMs`): two
 *   copies of a record handled at once (a batch is handled concurrently) report once, and a
 *   handler that died before reporting leaves a claim that lapses before Kafka redelivers.
 */
const CLAIM_REPORT_FN = `
local function claim_report(key, member, now, untilMs)
  local held = redis.call('HGET', key, member)
  if held == 'done' or (held and tonumber(held) > tonumber(now)) then return 0 end
  redis.call('HSET', key, member, untilMs)
  return 1
end
`;
const OFFER_STABLE = new RedisScript(`${CLAIM_REPORT_FN}
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local pending = redis.call('HGETALL', KEYS[2])
local waiting = {}
for i = 1, #pending, 2 do
  if redis.call('SISMEMBER', KEYS[3], pending[i]) == 0 then
    table.insert(waiting, pending[i])
    table.insert(waiting, pending[i + 1])
  end
end
local late = {}
local expired = redis.call('HGETALL', KEYS[4])
for i = 1, #expired, 2 do
  if claim_report(KEYS[5], 's' .. string.char(0) .. expired[i], ARGV[3], ARGV[4]) == 1 then
    table.insert(late, expired[i])
    redis.call('PEXPIRE', KEYS[5], ARGV[5])
  end
end
return {waiting, late}
`);

const OFFER_CANDIDATE = new RedisScript(`${CLAIM_REPORT_FN}
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then
  if claim_report(KEYS[5], 'c' .. string.char(0) .. ARGV[1], ARGV[4], ARGV[5]) == 0 then return {'done'} end
  redis.call('PEXPIRE', KEYS[5], ARGV[6])
  return {'late'}
end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return {'done'} end
local stable = redis.call('GET', KEYS[1])
if stable then return {'paired', stable} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {'waiting'}
`);

const CHECK_CANDIDATE = new RedisScript(`${CLAIM_REPORT_FN}
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  if claim_report(KEYS[3], 'c' .. string.char(0) .. ARGV[1], ARGV[2], ARGV[3]) == 0 then return 'done' end
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  return 'late'
end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 'done' end
return 'open'
`);

const MARK_DONE = new RedisScript(`
local added = redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
return added
`);

const CLAIM_REPORT = new RedisScript(`${CLAIM_REPORT_FN}
local claimed = claim_report(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if claimed == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return claimed
`);

const MARK_REPORTED = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], 'done') end
return 0
`);

// A deadline is claimed by moving it a lease into the future, not by removing it: a sweeper
// that dies (or whose reply is lost in a Redis restart) before it settled the outcome leaves
// the deadline to come due again, and the next sweeper finishes the job.
const CLAIM_DEADLINE = new RedisScript(`
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`);

// 1: expired (now or by an earlier sweep whose settle may not have happened; settling again
// is idempotent). 0: paired, nothing to do. 2: the stable side is here and the pair is being
// handed off (or will be, when the stable record is redelivered); look again later.
// The deadline entry, not the pending hash (which may have expired by TTL while no sweeper
// ran), is the record that a candidate waited.
const EXPIRE_PENDING = new RedisScript(`
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 1 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[4]) == 1 then return 2 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], 'x')
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
`);

export type CandidateOffer = { state: 'done' } | { state: 'late' } | { state: 'waiting' } | { state: 'paired'; stable: StoredSide };

/** A candidate side that was waiting for the stable side that just came. */
export interface WaitingCandidate {
  experimentId: string;
  arm: string;
  side: StoredSide;
}

export interface StableOffer {
  /** Candidate sides to pair with this stable side now. */
  waiting: WaitingCandidate[];
  /** Pairs of this request whose window had already expired: this stable side is late for them. */
  late: Array<{ experimentId: string; arm: string }>;
}

export interface ExpiredPair {
  requestId: string;
  experimentId: string;
  arm: string;
}

export interface JoinStateOptions {
  redis: Redis;
  keyPrefix: string;
  windowMs: number;
  /** How long a finished pair is remembered, to absorb redeliveries. @defaultValue 7 days */
  doneTtlMs?: number;
  /**
   * How long an expired pair is remembered so that a side arriving later is reported as a late
   * arrival (it is never paired either way while the pair is remembered as done).
   * @defaultValue 24 hours
   */
  expiredTtlMs?: number;
  /** How long a sweeper holds a claimed deadline before another sweeper may take it over. @defaultValue 30000 */
  claimLeaseMs?: number;
  /**
   * How long a handler holds the report of a pair (a dead letter to write). Shorter than a
   * consumer group's session timeout, so a record redelivered after its handler died finds the
   * claim lapsed and is reported after all. @defaultValue 10000
   */
  reportLeaseMs?: number;
}

/** Pairing state in Redis; every update is one atomic script. */
export class JoinState {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #windowMs: number;
  readonly #doneTtlMs: number;
  readonly #expiredTtlMs: number;
  readonly #claimLeaseMs: number;
  readonly #reportLeaseMs: number;

  constructor(options: JoinStateOptions) {
    this.#redis = options.redis;
    this.#prefix = options.keyPrefix;
    this.#windowMs = options.windowMs;
    this.#doneTtlMs = options.doneTtlMs ?? 7 * 24 * 3600_000;
    this.#expiredTtlMs = options.expiredTtlMs ?? 24 * 3600_000;
    this.#claimLeaseMs = options.claimLeaseMs ?? 30_000;
    this.#reportLeaseMs = options.reportLeaseMs ?? 10_000;
  }

  /** Stores the stable side and returns the candidate sides that were waiting for it. */
  async offerStable(requestId: string, side: StoredSide): Promise<WaitingCandidate[]> {
    return (await this.receiveStable(requestId, side)).waiting;
  }

  /**
   * Stores the stable side (for candidates still to come) and returns the candidate sides that
   * were waiting for it and the pairs for which it is late (their window expired before). Each
   * late pair is returned to one caller, which reports it and calls {@link markReported}.
   */
  async receiveStable(requestId: string, side: StoredSide): Promise<StableOffer> {
    const now = Date.now();
    const [waitingRaw = [], lateRaw = []] = (await OFFER_STABLE.run(this.#redis, 5, ...this.#keys(requestId), encodeSide(side), this.#windowMs, now, now + this.#reportLeaseMs, this.#expiredTtlMs)) as [
      string[]?,
      string[]?,
    ];
    const waiting: WaitingCandidate[] = [];
    for (let i = 0; i + 1 < waitingRaw.length; i += 2) {
      const [experimentId, arm] = splitField(waitingRaw[i] ?? '');
      waiting.push({ experimentId, arm, side: parseSide(waitingRaw[i + 1]) });
    }
    const late = lateRaw.map((raw) => {
      const [experimentId, arm] = splitField(raw);
      return { experimentId, arm };
    });
    return { waiting, late };
  }

  /**
   * Pairs a candidate side with the stable side, or keeps it waiting until the window ends.
   * `late`: the pair expired before; the caller reports the side and calls {@link markReported}.
   */
  async offerCandidate(requestId: string, experimentId: string, arm: string, side: StoredSide): Promise<CandidateOffer> {
    const now = Date.now();
    const raw = (await OFFER_CANDIDATE.run(this.#redis, 5, ...this.#keys(requestId), field(experimentId, arm), encodeSide(side), this.#windowMs * 2, now, now + this.#reportLeaseMs, this.#expiredTtlMs)) as string[];
    if (raw[0] === 'paired') return { state: 'paired', stable: parseSide(raw[1]) };
    if (raw[0] === 'done') return { state: 'done' };
    if (raw[0] === 'late') return { state: 'late' };
    await this.#redis.zadd(this.#deadlinesKey(), Date.now() + this.#windowMs, deadlineMember(requestId, experimentId, arm));
    return { state: 'waiting' };
  }

  /**
   * Where a pair stands, for a candidate side that will not be stored: `open`, `done` (paired,
   * refused, or expired with its late candidate reported) or `late` (expired; as with
   * {@link offerCandidate}, the caller reports it).
   */
  async checkCandidate(requestId: string, experimentId: string, arm: string): Promise<'done' | 'late' | 'open'> {
    const [, , done, expired, reports] = this.#keys(requestId);
    const now = Date.now();
    return (await CHECK_CANDIDATE.run(this.#redis, 3, done, expired, reports, field(experimentId, arm), now, now + this.#reportLeaseMs, this.#expiredTtlMs)) as 'done' | 'late' | 'open';
  }

  /**
   * Records that a pair reached the evaluation queue (or was refused); later redeliveries are
   * ignored. `hasDeadline: false` when the candidate never waited: a deadline left over all the
   * same (by an earlier delivery) finds the pair done when it comes due and is dropped then.
   */
  async markDone(requestId: string, experimentId: string, arm: string, hasDeadline = true): Promise<void> {
    const [, pending, done] = this.#keys(requestId);
    await MARK_DONE.run(this.#redis, 2, pending, done, field(experimentId, arm), this.#doneTtlMs);
    if (hasDeadline) await this.#redis.zrem(this.#deadlinesKey(), deadlineMember(requestId, experimentId, arm));
  }

  /** Claims a report about a pair: true for the one caller that should write it now. */
  async claimReport(requestId: string, experimentId: string, arm: string, report: PairReport): Promise<boolean> {
    const [, , , , reports] = this.#keys(requestId);
    const now = Date.now();
    return (await CLAIM_REPORT.run(this.#redis, 1, reports, `${report}\u0000${field(experimentId, arm)}`, now, now + this.#reportLeaseMs, this.#expiredTtlMs)) === 1;
  }

  /** Records that a report about a pair was written, so a redelivery does not write it again. */
  async markReported(requestId: string, experimentId: string, arm: string, report: PairReport): Promise<void> {
    const [, , , , reports] = this.#keys(requestId);
    await MARK_REPORTED.run(this.#redis, 1, reports, `${report}\u0000${field(experimentId, arm)}`);
  }

  /**
   * Claims candidate sides whose window passed without a stable side and marks them expired.
   * Each is returned to one caller at a time, even with several join instances sweeping; the
   * caller settles the outcome and then calls {@link acknowledgeExpired}. An entry not
   * acknowledged within the claim lease is returned again (settling it twice changes nothing).
   */
  async expire(now = Date.now(), limit = 500): Promise<ExpiredPair[]> {
    const deadlines = this.#deadlinesKey();
    const members = await this.#redis.zrangebyscore(deadlines, '-inf', now, 'LIMIT', 0, limit);
    const expired: ExpiredPair[] = [];
    for (const member of members) {
      if ((await CLAIM_DEADLINE.run(this.#redis, 1, deadlines, member, now, now + this.#claimLeaseMs)) === 0) continue;
      const [requestId = '', experimentId = '', arm = ''] = JSON.parse(member) as string[];
      const [stable, pending, done, tombstones] = this.#keys(requestId);
      const result = await EXPIRE_PENDING.run(this.#redis, 4, pending, done, tombstones, stable, field(experimentId, arm), this.#doneTtlMs, this.#expiredTtlMs);
      if (result === 1) expired.push({ requestId, experimentId, arm });
      else if (result === 0) await this.#redis.zrem(deadlines, member);
      else await this.#redis.zadd(deadlines, now + this.#windowMs, member);
    }
    return expired;
  }

  /** Forgets the deadlines of expired pairs whose outcome was settled. */
  async acknowledgeExpired(pairs: readonly ExpiredPair[]): Promise<void> {
    if (pairs.length === 0) return;
    await this.#redis.zrem(this.#deadlinesKey(), ...pairs.map((pair) => deadlineMember(pair.requestId, pair.experimentId, pair.arm)));
  }

  #keys(requestId: string): [string, string, string, string, string] {
    const base = `${this.#prefix}:join:{${requestId}}`;
    return [`${base}:stable`, `${base}:pending`, `${base}:done`, `${base}:expired`, `${base}:reports`];
  }

  #deadlinesKey(): string {
    return `${this.#prefix}:join:deadlines`;
  }
}

function field(experimentId: string, arm: string): string {
  return `${experimentId}\u0000${arm}`;
}

function splitField(raw: string): [string, string] {
  const [experimentId = '', arm = ''] = raw.split('\u0000');
  return [experimentId, arm];
}

/**
 * A side as stored: a marker, the location and the size marker separated by NUL, then the
 * event's JSON as it was read. Not JSON in JSON: escaping and unescaping a ~2 KB answer twice
 * per pair was a tenth of the join's time. (Kafka topic names cannot hold NUL.)
 */
const SIDE_MARK = '\u0001';
const SEP = '\u0000';

export function encodeSide(side: StoredSide): string {
  return `${SIDE_MARK}${side.topic}${SEP}${side.partition}${SEP}${side.offset}${SEP}${side.tooLargeBytes ?? ''}${SEP}${side.event}`;
}

export function parseSide(raw: string | undefined): StoredSide {
  if (raw === undefined) return { event: '', topic: '', partition: 0, offset: '' };
  // Sides stored before this format were JSON objects; they are still read until their window ends.
  if (!raw.startsWith(SIDE_MARK)) return JSON.parse(raw) as StoredSide;
  const ends: number[] = [];
  for (let at = 0; ends.length < 4; at++) {
    at = raw.indexOf(SEP, at);
    if (at < 0) throw new Error('a stored join side is truncated');
    ends.push(at);
  }
  const [topicEnd = 0, partitionEnd = 0, offsetEnd = 0, sizeEnd = 0] = ends;
  const size = raw.slice(offsetEnd + 1, sizeEnd);
  const side: StoredSide = { event: raw.slice(sizeEnd + 1), topic: raw.slice(1, topicEnd), partition: Number(raw.slice(topicEnd + 1, partitionEnd)), offset: raw.slice(partitionEnd + 1, offsetEnd) };
  if (size !== '') side.tooLargeBytes = Number(size);
  return side;
}

function deadlineMember(requestId: string, experimentId: string, arm: string): string {
  return JSON.stringify([requestId, experimentId, arm]);
}
