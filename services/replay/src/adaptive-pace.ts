import type { CandidateConfig } from '@shadow-replay/contracts';
import { RedisScript, type ChatCallResult, type RateLimiter } from '@shadow-replay/platform';
import type { Redis } from 'ioredis';

type AdaptiveSettings = NonNullable<CandidateConfig['rate']['adaptive']>;

/** What one call says about the candidate's load. */
export const PaceSignal = {
  /** 429, 5xx, a timeout or a call slower than the target: slow down. */
  pushBack: 'push_back',
  /** A call within the target: the pace may creep up. */
  fine: 'fine',
  /** Says nothing about load (a 400, a malformed answer). */
  none: 'none',
} as const;
export type PaceSignal = (typeof PaceSignal)[keyof typeof PaceSignal];

/**
 * Multiplicative decrease, additive increase, on Redis's clock in one hash per arm, so every
 * instance reads and moves the same pace. A cut opens a cool-down: the calls already in flight
 * when the candidate pushed back report the same episode and must not cut again. The pace rises
 * one step per `increaseEveryMs` only while nothing pushes back and no cut is cooling down.
 * Returns the pace as a string (Lua numbers become integers on the way out).
 */
const ADJUST = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'rate', 'cut', 'rise')
local rate = tonumber(state[1]) or tonumber(ARGV[3])
local cut = tonumber(state[2]) or 0
local rise = tonumber(state[3]) or now
local ceiling, floor = tonumber(ARGV[2]), tonumber(ARGV[4])
if ARGV[1] == 'push_back' then
  if now - cut >= tonumber(ARGV[6]) then
    rate = math.max(floor, rate * tonumber(ARGV[5]))
    cut = now
    rise = now
  end
elseif ARGV[1] == 'fine' then
  if now - cut >= tonumber(ARGV[6]) and now - rise >= tonumber(ARGV[8]) and rate < ceiling then
    rate = math.min(ceiling, rate + tonumber(ARGV[7]))
    rise = now
  end
end
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'cut', cut, 'rise', rise)
redis.call('PEXPIRE', KEYS[1], 86400000)
return tostring(rate)
`);

export interface AdaptivePaceOptions {
  redis: Redis;
  /** The arm's hash, e.g. `shadow:replay:{exp}:arm:pace`. */
  key: string;
  /** The configured requests/s: the ceiling. */
  ceiling: number;
  settings: AdaptiveSettings;
  limiter: RateLimiter;
}

/** Adaptive pacing of one arm: moves the limiter's pace by what the candidate's answers say. */
export class AdaptivePace {
  readonly #options: AdaptivePaceOptions;
  readonly #increase: number;

  constructor(options: AdaptivePaceOptions) {
    this.#options = options;
    this.#increase = options.settings.increaseRps ?? options.ceiling * 0.05;
  }

  /** The shared pace now (and the limiter set to it); at the first call of an experiment, the start pace. */
  sync(): Promise<number> {
    return this.#adjust(PaceSignal.none);
  }

  /** Reads one call's result into the shared pace; a Retry-After holds the whole arm for that long. */
  async observe(result: ChatCallResult): Promise<number> {
    const signal = this.signalOf(result);
    if (signal === PaceSignal.pushBack && result.retryAfterMs !== null) await this.#options.limiter.holdOff(result.retryAfterMs);
    return this.#adjust(signal);
  }

  signalOf(result: ChatCallResult): PaceSignal {
    const { settings } = this.#options;
    const code = result.error?.code;
    if (result.status === 429 || (result.status !== null && result.status >= 500)) return PaceSignal.pushBack;
    if (code === 'first_token_timeout' || code === 'total_timeout' || code === 'stream_idle_timeout' || code === 'connect_error') return PaceSignal.pushBack;
    if (result.outcome !== 'ok') return PaceSignal.none;
    const latency = settings.latencyMetric === 'ttft' ? (result.timing.ttftMs ?? result.timing.e2eMs) : result.timing.e2eMs;
    if (settings.targetLatencyMs !== undefined && latency > settings.targetLatencyMs) return PaceSignal.pushBack;
    return PaceSignal.fine;
  }

  async #adjust(signal: PaceSignal): Promise<number> {
    const { redis, key, ceiling, settings, limiter } = this.#options;
    const start = settings.startRps ?? ceiling;
    const rate = Number(
      await ADJUST.run(redis, 1, key, signal, ceiling, start, settings.minRps, settings.decreaseFactor, settings.cooldownMs, this.#increase, settings.increaseEveryMs),
    );
    limiter.setRps(rate);
    return rate;
  }
}
