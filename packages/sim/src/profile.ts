import { z } from 'zod';
import { SimError, SimErrorCode, type SimIssue } from './errors.js';

/** How `truncate` faults end the response. */
export const SimTruncateMode = {
  /** End the HTTP response cleanly, short of the end of the answer (client sees a "complete" but cut body). */
  End: 'end',
  /** Destroy the socket mid-answer (client sees a connection error while reading the body). */
  Reset: 'reset',
} as const;
export type SimTruncateMode = (typeof SimTruncateMode)[keyof typeof SimTruncateMode];

/** Output length distribution, in tokens (whitespace words). */
export type SimOutputTokens =
  /** Normal distribution, rounded, at least 1. */
  | { readonly mean: number; readonly sd: number }
  /** Uniform integer in [min, max]. */
  | { readonly min: number; readonly max: number };

/** Time-to-first-token distribution: lognormal through the median and the 99th percentile. */
export interface SimTtft {
  readonly median: number;
  readonly p99: number;
}

/** Settings of the `judge` behaviour; its presence turns the profile into a judge. */
export interface SimJudgeSettings {
  /**
   * Probability of answering "A" regardless of which answer is better, to model position bias.
   * @defaultValue 0
   */
  readonly positionBias: number;
  /**
   * When set, position bias only decides close calls: pairs whose answers differ in length by at
   * most this many words (0: only equal-length answers, ties among them). A clearly better answer
   * then always wins, as real LLM judges behave: their position bias shows mostly when the two
   * answers are of similar quality (Zheng et al. 2023, MT-bench; Wang et al. 2023). Unset, the
   * bias overrides every verdict. @defaultValue unset
   */
  readonly closeCallWords?: number;
}

/** Validated behaviour of a simulated model. All rates and fractions are in [0, 1]. */
export interface SimProfile {
  /** Listed by `GET /v1/models` and logged by the CLI. @defaultValue "custom" */
  readonly name: string;
  /** Seed of this model's own answers. @defaultValue "sim" */
  readonly seed: string;
  /**
   * Seed used for the prompts that do not diverge; lets a candidate answer exactly like
   * the model whose `seed` this is. @defaultValue the profile's `seed`
   */
  readonly baseSeed?: string | undefined;
  /** Fraction of prompts answered with `seed` instead of `baseSeed`. @defaultValue 0 */
  readonly divergence: number;
  /**
   * Salt of the hash that picks the diverging prompts. Two profiles with the same salt
   * and divergence diverge on the same prompts. @defaultValue "sim-divergence"
   */
  readonly divergenceSalt: string;
  /** Fraction of answers to requests with `temperature > 0` that get one word changed at random. @defaultValue 0 */
  readonly temperatureNoise: number;
  /** Answer length in tokens, before `max_tokens`. @defaultValue `{ mean: 40, sd: 10 }` */
  readonly outputTokens: SimOutputTokens;
  /** Time to first token, in ms. @defaultValue `{ median: 120, p99: 400 }` */
  readonly ttftMs: SimTtft;
  /** Decode speed after the first token. @defaultValue 60 */
  readonly tokensPerSecond: number;
  /** Tokens per SSE content chunk. @defaultValue 3 */
  readonly chunkTokens: number;
  /** Multiplier on every delay; 0 answers instantly. @defaultValue 1 */
  readonly timeScale: number;
  /** Rate of 500 `server_error` answers. @defaultValue 0 */
  readonly errorRate: number;
  /** Rate of 429 answers with `Retry-After`. @defaultValue 0 */
  readonly rateLimitRate: number;
  /** Rate of requests accepted and never answered. @defaultValue 0 */
  readonly timeoutRate: number;
  /** Rate of answers cut mid-way. @defaultValue 0 */
  readonly truncateRate: number;
  /** Rate of 200 answers whose body / one SSE data line is not JSON. @defaultValue 0 */
  readonly malformedRate: number;
  /** Rate of answers that start (headers, an empty role chunk) and then send no token, only keep-alive comments. @defaultValue 0 */
  readonly stallRate: number;
  /** Value of the `Retry-After` header of 429 answers, in seconds. @defaultValue 1 */
  readonly retryAfterSeconds: number;
  /**
   * Requests accepted per sliding second; above it a request gets a 429 with `Retry-After`, like
   * a provider's rate limit or a saturated server. @defaultValue undefined (no limit)
   */
  readonly capacityRps?: number | undefined;
  /** How truncate faults end the response. @defaultValue "end" */
  readonly truncateMode: SimTruncateMode;
  /**
   * Seed of the fault draws. Without it faults use `Math.random`; with it the n-th request
   * a server receives always gets the same draw. @defaultValue undefined (Math.random)
   */
  readonly faultSeed?: string | undefined;
  /** Fraction of requests with `tools` (and `tool_choice` auto) answered with a tool call. @defaultValue 0 */
  readonly toolCallRate: number;
  /** Judge behaviour; absent for ordinary chat models. @defaultValue undefined */
  readonly judge?: SimJudgeSettings | undefined;
}

const unit = z.number().min(0).max(1);
// CLI `--set seed=42` arrives as a number; seeds are strings.
const seed = z.union([z.string().min(1), z.number().transform(String)]);

const outputTokensSchema = z
  .strictObject({
    mean: z.number().positive().optional(),
    sd: z.number().nonnegative().optional(),
    min: z.int().min(1).optional(),
    max: z.int().min(1).optional(),
  })
  .superRefine((value, ctx) => {
    const normal = value.mean !== undefined || value.sd !== undefined;
    const uniform = value.min !== undefined || value.max !== undefined;
    if (normal && uniform) {
      ctx.addIssue({ code: 'custom', path: ['mean'], message: 'use either mean/sd or min/max, not both' });
    } else if (uniform) {
      if (value.min === undefined) ctx.addIssue({ code: 'custom', path: ['min'], message: 'required with max' });
      if (value.max === undefined) ctx.addIssue({ code: 'custom', path: ['max'], message: 'required with min' });
      if (value.min !== undefined && value.max !== undefined && value.max < value.min) {
        ctx.addIssue({ code: 'custom', path: ['max'], message: 'must be >= min' });
      }
    } else if (value.mean === undefined) {
      ctx.addIssue({ code: 'custom', path: ['mean'], message: 'required (or give min and max)' });
    }
  })
  .transform((value): SimOutputTokens =>
    value.min !== undefined && value.max !== undefined
      ? { min: value.min, max: value.max }
      : { mean: value.mean ?? 1, sd: value.sd ?? 0 },
  );

const ttftSchema = z
  .strictObject({ median: z.number().nonnegative(), p99: z.number().nonnegative() })
  .refine((value) => value.p99 >= value.median, { path: ['p99'], message: 'must be >= median' });

const faultRateKeys = ['errorRate', 'rateLimitRate', 'timeoutRate', 'truncateRate', 'malformedRate', 'stallRate'] as const;

/** Zod schema of a profile; prefer {@link parseProfile}, which throws a {@link SimError}. */
export const simProfileSchema = z
  .strictObject({
    name: z.string().min(1).default('custom'),
    seed: seed.default('sim'),
    baseSeed: seed.optional(),
    divergence: unit.default(0),
    divergenceSalt: z.string().default('sim-divergence'),
    temperatureNoise: unit.default(0),
    outputTokens: outputTokensSchema.default({ mean: 40, sd: 10 }),
    ttftMs: ttftSchema.default({ median: 120, p99: 400 }),
    tokensPerSecond: z.number().positive().default(60),
    chunkTokens: z.int().min(1).default(3),
    timeScale: z.number().nonnegative().default(1),
    errorRate: unit.default(0),
    rateLimitRate: unit.default(0),
    timeoutRate: unit.default(0),
    truncateRate: unit.default(0),
    malformedRate: unit.default(0),
    stallRate: unit.default(0),
    retryAfterSeconds: z.int().nonnegative().default(1),
    capacityRps: z.number().positive().optional(),
    truncateMode: z.enum([SimTruncateMode.End, SimTruncateMode.Reset]).default(SimTruncateMode.End),
    faultSeed: seed.optional(),
    toolCallRate: unit.default(0),
    judge: z.strictObject({ positionBias: unit.default(0), closeCallWords: z.int().nonnegative().optional() }).optional(),
  })
  .superRefine((value, ctx) => {
    const total = faultRateKeys.reduce((sum, key) => sum + value[key], 0);
    if (total > 1 + 1e-9) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `${faultRateKeys.join(' + ')} must be <= 1 (is ${total})`,
      });
    }
  });

/** A profile as written by hand: every field optional, defaults applied by {@link parseProfile}. */
export type SimProfileInput = z.input<typeof simProfileSchema>;

/**
 * A change to apply to a profile with `setProfile`. Nested objects merge field by field;
 * `null` removes an optional field (`baseSeed`, `faultSeed`, `judge`).
 */
export type SimProfilePatch = {
  readonly [K in Exclude<keyof SimProfileInput, 'ttftMs' | 'judge' | 'outputTokens' | 'baseSeed' | 'faultSeed'>]?: SimProfileInput[K];
} & {
  readonly baseSeed?: string | number | null;
  readonly faultSeed?: string | number | null;
  readonly ttftMs?: Partial<SimTtft>;
  readonly judge?: Partial<SimJudgeSettings> | null;
  readonly outputTokens?: { readonly mean?: number; readonly sd?: number; readonly min?: number; readonly max?: number };
};

// Compile-time proof that the hand-written interface and the schema agree.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesInterface: Same<z.output<typeof simProfileSchema>, Mutable<SimProfile>> = true;
void schemaMatchesInterface;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function toIssues(error: z.ZodError): SimIssue[] {
  return error.issues.flatMap((issue): SimIssue[] => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: path ? `${path}.${key}` : key, message: 'unknown field' }));
    }
    return [{ path: path || '(profile)', message: issue.message }];
  });
}

/**
 * Validates a profile and fills in defaults.
 * @throws SimError `SIM_INVALID_PROFILE`; its message and `issues` name each bad field by path.
 */
export function parseProfile(input: unknown): SimProfile {
  const result = simProfileSchema.safeParse(input);
  if (!result.success) {
    const issues = toIssues(result.error);
    const summary = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
    throw new SimError(SimErrorCode.InvalidProfile, `invalid sim profile: ${summary}`, {
      cause: result.error,
      issues,
    });
  }
  return Object.freeze(result.data);
}

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

function mergeOutputTokens(base: SimOutputTokens, patch: NonNullable<SimProfilePatch['outputTokens']>): unknown {
  const patchIsUniform = patch.min !== undefined || patch.max !== undefined;
  const patchIsNormal = patch.mean !== undefined || patch.sd !== undefined;
  const baseIsUniform = 'min' in base;
  // Merging across the two shapes would produce a mix the schema rejects; the patch wins.
  if ((patchIsUniform && !baseIsUniform) || (patchIsNormal && baseIsUniform)) return withoutUndefined({ ...patch });
  return { ...base, ...withoutUndefined({ ...patch }) };
}

/**
 * Returns `base` with `patch` applied, validated.
 * @throws SimError `SIM_INVALID_PROFILE` naming the bad field path.
 */
export function applyProfilePatch(base: SimProfile, patch: SimProfilePatch): SimProfile {
  const merged: Record<string, unknown> = { ...base, ...withoutUndefined({ ...patch }) };
  if (patch.ttftMs !== undefined) merged['ttftMs'] = { ...base.ttftMs, ...withoutUndefined({ ...patch.ttftMs }) };
  if (patch.outputTokens !== undefined) merged['outputTokens'] = mergeOutputTokens(base.outputTokens, patch.outputTokens);
  if (patch.judge !== undefined && patch.judge !== null) {
    merged['judge'] = { ...base.judge, ...withoutUndefined({ ...patch.judge }) };
  }
  for (const key of ['baseSeed', 'faultSeed', 'judge'] as const) {
    if (patch[key] === null) delete merged[key];
  }
  return parseProfile(merged);
}
