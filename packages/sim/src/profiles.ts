import { SimError, SimErrorCode } from './errors.js';
import { parseProfile, type SimProfile } from './profile.js';

/** Names of the built-in profiles. */
export const SimProfileName = {
  /** The production model: ttft median 120 ms / p99 400 ms, 60 tok/s, ~40 tokens, seed "stable". */
  Stable: 'stable',
  /** A slightly faster model that answers like `stable` except on 10% of prompts. */
  Candidate: 'candidate',
  /** Instant answers identical to `stable`, to measure the pipeline's own ceiling. */
  Fast: 'fast',
  /** ttft median 2 s, 20 tok/s; answers like `stable`. */
  Slow: 'slow',
  /** `stable` with 10% 500s and 5% 429s. */
  Flaky: 'flaky',
  /** Answers verdict requests with `{"winner":"A"|"B"|"tie","reason":…}`. */
  Judge: 'judge',
} as const;
export type SimProfileName = (typeof SimProfileName)[keyof typeof SimProfileName];

const stableLatency = { ttftMs: { median: 120, p99: 400 }, tokensPerSecond: 60 } as const;

/** The built-in profiles, validated and frozen. */
export const profiles: Readonly<Record<SimProfileName, SimProfile>> = Object.freeze({
  stable: parseProfile({ name: 'stable', seed: 'stable', ...stableLatency, outputTokens: { mean: 40, sd: 10 } }),
  candidate: parseProfile({
    name: 'candidate',
    seed: 'candidate',
    baseSeed: 'stable',
    divergence: 0.1,
    ttftMs: { median: 100, p99: 350 },
    tokensPerSecond: 70,
    // Same length distribution as stable, or the non-diverging 90% would differ in length.
    outputTokens: { mean: 40, sd: 10 },
  }),
  fast: parseProfile({
    name: 'fast',
    seed: 'stable',
    outputTokens: { mean: 40, sd: 10 },
    ttftMs: { median: 0, p99: 0 },
    tokensPerSecond: 1_000_000,
    timeScale: 0,
  }),
  slow: parseProfile({
    name: 'slow',
    seed: 'stable',
    outputTokens: { mean: 40, sd: 10 },
    ttftMs: { median: 2000, p99: 5000 },
    tokensPerSecond: 20,
  }),
  flaky: parseProfile({
    name: 'flaky',
    seed: 'stable',
    ...stableLatency,
    outputTokens: { mean: 40, sd: 10 },
    errorRate: 0.1,
    rateLimitRate: 0.05,
  }),
  judge: parseProfile({
    name: 'judge',
    seed: 'judge',
    ttftMs: { median: 200, p99: 600 },
    tokensPerSecond: 80,
    judge: { positionBias: 0 },
  }),
});

/** Whether `name` is one of the built-in profile names. */
export function isSimProfileName(name: string): name is SimProfileName {
  return Object.hasOwn(profiles, name);
}

/**
 * The built-in profile called `name`.
 * @throws SimError `SIM_UNKNOWN_PROFILE` listing the known names.
 */
export function resolveProfile(name: string): SimProfile {
  if (!isSimProfileName(name)) {
    throw new SimError(
      SimErrorCode.UnknownProfile,
      `unknown sim profile "${name}" (known: ${Object.keys(profiles).join(', ')})`,
    );
  }
  return profiles[name];
}
