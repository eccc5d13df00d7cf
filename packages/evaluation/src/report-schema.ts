import { OUTCOMES, Outcome } from '@shadow-replay/contracts';
import { z } from 'zod';

const count = z.number().int().nonnegative();
const fraction = z.number().min(0).max(1);

/** The per-arm verdict. */
export const VerdictStatus = { pass: 'pass', fail: 'fail', inconclusive: 'inconclusive' } as const;
export type VerdictStatus = (typeof VerdictStatus)[keyof typeof VerdictStatus];

/** {@link Summary} of `stats.ts` as a schema: `n` = 0 and null statistics for an empty sample. */
export const SummarySchema = z.object({
  n: count,
  mean: z.number().nullable(),
  p50: z.number().nullable(),
  p90: z.number().nullable(),
  p95: z.number().nullable(),
  p99: z.number().nullable(),
  max: z.number().nullable(),
});

/** A 95% confidence interval. */
export const IntervalSchema = z.object({ low: z.number(), high: z.number() });
export type Interval = z.infer<typeof IntervalSchema>;

/** One count per terminal outcome; every outcome is present, 0 when never counted. */
export const OutcomeCountsSchema = z.record(z.enum(Outcome), count);
export type OutcomeCounts = z.infer<typeof OutcomeCountsSchema>;

export const ArmConservationSchema = z.object({
  consumed: count,
  outcomes: OutcomeCountsSchema,
  pending: count,
  /** Evaluation records of the arm in the report (each key once); must equal `outcomes.evaluated`. */
  records: count,
  balanced: z.boolean(),
});
export type ArmConservation = z.infer<typeof ArmConservationSchema>;

export const ConservationSchema = z.object({
  /** Every arm balances. */
  balanced: z.boolean(),
  consumed: count,
  pending: count,
  /** Outcomes summed over arms. */
  outcomes: OutcomeCountsSchema,
  byArm: z.record(z.string(), ArmConservationSchema),
  evaluatedRecords: count,
  /** Why it does not balance, and anything else the reader of the counters should know. */
  notes: z.array(z.string()),
});
export type Conservation = z.infer<typeof ConservationSchema>;

const outcomeShape = Object.fromEntries(OUTCOMES.map((outcome) => [outcome, count])) as Record<Outcome, typeof count>;

export const ArmCountsSchema = z.object({ consumed: count, ...outcomeShape, pending: count, records: count });
export type ArmCounts = z.infer<typeof ArmCountsSchema>;

const SideSummariesSchema = z.object({ stable: SummarySchema, candidate: SummarySchema });

/**
 * Per side, the distribution over requests of one per-request figure. The ITL and throughput
 * summaries count only the requests that measured them (streamed at least two content chunks),
 * and are absent from reports built before they existed.
 */
export const LatencySchema = z.object({
  e2eMs: SideSummariesSchema,
  ttftMs: SideSummariesSchema,
  tpotMs: SideSummariesSchema,
  /** Each request's median gap between content chunks (ms), summarised over requests. */
  itlP50Ms: SideSummariesSchema.optional(),
  /** Each request's p99 gap between content chunks (ms), summarised over requests: the stutter a reader sees. */
  itlP99Ms: SideSummariesSchema.optional(),
  /** Each request's longest gap between content chunks (ms), summarised over requests: stalls mid-answer. */
  itlMaxMs: SideSummariesSchema.optional(),
  /** Each request's output tokens per second (higher is faster), summarised over requests. */
  outputTokensPerSec: SideSummariesSchema.optional(),
});
export type Latency = z.infer<typeof LatencySchema>;

/**
 * A point estimate and its 95% interval; both null when there is no data. `note` says why the
 * interval is null although the value is known (e.g. too few pairs for a p99 interval); absent
 * otherwise and from older reports.
 */
export const EstimateSchema = z.object({ value: z.number().nullable(), ci95: IntervalSchema.nullable(), note: z.string().optional() });
export type Estimate = z.infer<typeof EstimateSchema>;

const DeltaSchema = z.object({
  n: count,
  /** Median of the per-request differences (ms), with a paired bootstrap interval. */
  p50: EstimateSchema,
  /**
   * p99 of the per-request differences (ms), with a distribution-free interval (fractional order
   * statistics); the interval is null, with a `note`, below `P99_INTERVAL_MIN_SAMPLES` (368) pairs.
   */
  p99: EstimateSchema,
  /**
   * candidate p99 / stable p99 over the same requests, with a paired bootstrap interval
   * (requests resampled with both their latencies), null with a `note` below 368 pairs; the p99
   * E2E gate reads this.
   */
  p99Ratio: EstimateSchema,
});

/** Paired candidate − stable differences, per request, then summarised. */
export const DeltasSchema = z.object({ e2eMs: DeltaSchema, ttftMs: DeltaSchema });

const SideErrorsSchema = z.object({
  /** Failed requests. */
  n: count,
  /** Requests the rate is over. */
  total: count,
  rate: fraction.nullable(),
  /** Wilson 95% interval of the rate. */
  ci95: IntervalSchema.nullable(),
});
export const ErrorsSchema = z.object({
  stable: SideErrorsSchema,
  candidate: SideErrorsSchema,
  /** Candidate rate − stable rate, with Newcombe's hybrid score 95% interval; the error-rate gate reads it. */
  difference: EstimateSchema,
});

/** A binomial rate: `count` of `n` pairs, with its Wilson 95% interval; rate and interval null when n is 0. */
export const ProportionSchema = z.object({ n: count, count, rate: fraction.nullable(), ci95: IntervalSchema.nullable() });
export type Proportion = z.infer<typeof ProportionSchema>;

/** A mean of per-pair values in [0, 1], with a bootstrap 95% interval; null when n is 0. */
export const MeanSchema = z.object({ n: count, mean: fraction.nullable(), ci95: IntervalSchema.nullable() });

const TokenCountSchema = z.object({ sum: count, mean: z.number().nonnegative().nullable() });
const SideTokensSchema = z.object({ n: count, prompt: TokenCountSchema, completion: TokenCountSchema });
export const TokensSchema = z.object({ stable: SideTokensSchema, candidate: SideTokensSchema });

const SideCostSchema = z.object({ n: count, totalUsd: z.number().nonnegative(), meanUsd: z.number().nonnegative() });
export const CostSchema = z.object({ stable: SideCostSchema.nullable(), candidate: SideCostSchema.nullable() });

const SideProportionsSchema = z.object({ stable: ProportionSchema, candidate: ProportionSchema });

/**
 * Text and structure agreement over the pairs where both sides answered ok. The flat `…Rate`
 * fields predate the intervals and are kept for existing readers; each equals its
 * proportion's `rate`. A metric an older evaluator did not record counts only the records that
 * carry it, so its `n` can be below the quality `n`.
 */
export const QualitySchema = z.object({
  n: count,
  exactMatchRate: fraction.nullable(),
  normalizedMatchRate: fraction.nullable(),
  finishReasonAgreementRate: fraction.nullable(),
  meanLengthRatio: z.number().nonnegative().nullable(),
  exactMatch: ProportionSchema,
  normalizedMatch: ProportionSchema,
  finishReasonAgreement: ProportionSchema,
  toolCallAgreement: ProportionSchema,
  editSimilarity: MeanSchema,
  rougeLF1: MeanSchema,
  /** Per side, among its JSON-looking answers: the share that parse. */
  jsonValid: SideProportionsSchema,
  /** Among pairs where both sides parse as JSON: the share with no structural difference. */
  jsonEqual: ProportionSchema,
  /** Per side: the share of answers that open with a refusal. */
  refusal: SideProportionsSchema,
});

export const JudgeSummarySchema = z.object({
  n: count,
  wins: count,
  ties: count,
  losses: count,
  inconsistent: count,
  winRate: fraction.nullable(),
  ci95: IntervalSchema.nullable(),
  /** Pairs the judge was asked about but whose verdict could not be read (raw text kept in the record). */
  parseErrors: count.optional(),
  /** Pairs whose judge stayed unreachable. */
  errors: count.optional(),
  /** Pairs outside the judge's sample. */
  notSampled: count.optional(),
  /** Questions the judge answered: two per judged pair (both orders); identical answers cost none. */
  calls: count.optional(),
  /** Extra attempts of those calls after a transient failure (connection error, 5xx, 429). */
  retries: count.optional(),
  /** Judge tokens and cost over the experiment. */
  tokens: count.optional(),
  costUsd: z.number().nonnegative().nullable().optional(),
});

/** What a slice holds: one value of its dimension, the least frequent values folded together, or the pairs without a value. */
export const SliceKind = { value: 'value', other: 'other', missing: 'missing' } as const;
export type SliceKind = (typeof SliceKind)[keyof typeof SliceKind];

/** The dimensions a report slices each arm by. */
export const SliceDimension = { route: 'route', model: 'model', tenant: 'tenant' } as const;
export type SliceDimension = (typeof SliceDimension)[keyof typeof SliceDimension];

/**
 * An arm's statistics over the pairs of one route, model or tenant. Error rates are over the
 * slice's evaluation records only: `candidate_error` outcomes are counted per arm, not per
 * request attribute, so they cannot be placed in a slice.
 */
export const SliceSchema = z.object({
  kind: z.enum(SliceKind),
  /** The dimension's value; null for `other` and `missing`. */
  value: z.string().nullable(),
  /** Distinct values in the slice: 1 for `value`, how many were folded for `other`, 0 for `missing`. */
  values: count,
  /** Evaluation records in the slice. */
  records: count,
  /** Fewer records than `minSamples`: shown, but too few to decide anything; no bootstrap interval is computed. */
  tooSmall: z.boolean(),
  errors: ErrorsSchema,
  /**
   * Median and p99 of the per-request E2E deltas (candidate − stable) over the pairs where both
   * sides answered ok: the median with a paired bootstrap interval once there are at least
   * `minSamples` pairs, the p99 with a distribution-free interval once there are 368.
   */
  e2eDelta: z.object({ n: count, p50: EstimateSchema, p99: EstimateSchema }),
  judge: JudgeSummarySchema,
});
export type Slice = z.infer<typeof SliceSchema>;

/**
 * An arm's pairs sliced by the request's route, requested model and tenant (each record carries
 * them, see `EvaluationRecord.route`). Per dimension, slices are ordered by records, largest
 * first: at most `maxValues` values, then `other` (the rest folded together) and `missing`.
 */
export const ArmSlicesSchema = z.object({
  minSamples: count,
  maxValues: count,
  route: z.array(SliceSchema),
  model: z.array(SliceSchema),
  tenant: z.array(SliceSchema),
});
export type ArmSlices = z.infer<typeof ArmSlicesSchema>;

export const VerdictSchema = z.object({
  status: z.enum(VerdictStatus),
  reasons: z.array(z.string()).min(1),
});
export type Verdict = z.infer<typeof VerdictSchema>;

/** Values of one series behind a plot: sorted ascending, at most `maxValues` of them (see `MAX_SAMPLE_VALUES`). */
export const SampleSchema = z.object({
  /** Values in the series before thinning. */
  n: count,
  values: z.array(z.number()),
});
export type Sample = z.infer<typeof SampleSchema>;

/**
 * Per-request values over the pairs where both sides answered ok, for the HTML report's CDFs
 * and histograms (ms, rounded to 0.01). Above `maxValues` a series keeps the order statistics
 * at evenly spaced ranks, so its shape survives the thinning.
 */
export const SamplesSchema = z.object({
  maxValues: count,
  e2eMs: z.object({ stable: SampleSchema, candidate: SampleSchema }),
  ttftMs: z.object({ stable: SampleSchema, candidate: SampleSchema }),
  /** candidate − stable per request. */
  deltaE2eMs: SampleSchema,
  /** candidate − stable per request, pairs where both sides streamed. */
  deltaTtftMs: SampleSchema,
});
export type Samples = z.infer<typeof SamplesSchema>;

/** Why a pair is among an arm's worst pairs. */
export const WorstPairReason = { leastSimilar: 'least_similar', slowest: 'slowest' } as const;
export type WorstPairReason = (typeof WorstPairReason)[keyof typeof WorstPairReason];

/** A pair for a reviewer to read, with the beginning of both answers when the record carries them. */
export const WorstPairSchema = z.object({
  requestId: z.string().min(1),
  reason: z.enum(WorstPairReason),
  editSimilarity: fraction.nullable(),
  deltaE2eMs: z.number(),
  deltaTtftMs: z.number().nullable(),
  /** Answer excerpts (`comparison.excerpts`, at most 2,000 code points); null when the record has none. */
  stableText: z.string().nullable(),
  candidateText: z.string().nullable(),
});
export type WorstPair = z.infer<typeof WorstPairSchema>;

export const ArmReportSchema = z.object({
  arm: z.string().min(1),
  counts: ArmCountsSchema,
  latency: LatencySchema,
  deltas: DeltasSchema,
  errors: ErrorsSchema,
  tokens: TokensSchema,
  cost: CostSchema,
  quality: QualitySchema,
  judge: JudgeSummarySchema,
  /** Noise-floor comparison against a control arm; null until a control arm exists. */
  noise: z.record(z.string(), z.unknown()).nullable(),
  verdict: VerdictSchema,
  /** The values behind the HTML report's plots; absent from reports built before it existed. */
  samples: SamplesSchema.optional(),
  /** Up to ten pairs to read first (least similar, largest slowdown); absent from older reports. */
  worstPairs: z.array(WorstPairSchema).optional(),
  /** The arm's statistics by route, model and tenant; absent from older reports. */
  slices: ArmSlicesSchema.optional(),
  /** `shed_budget` requests by the limit reached (`requests`, `tokens`, `cost`, `end_time`); absent when none was shed or from older reports. */
  budgetLimitsReached: z.record(z.string(), count).optional(),
});
export type ArmReport = z.infer<typeof ArmReportSchema>;

/** How the report's intervals were computed, so a reader can reproduce them. */
export const StatisticsSchema = z.object({
  confidence: fraction,
  /** Base seed of the bootstrap; each arm and metric draws its own stream derived from it. */
  seed: z.number().int().nonnegative(),
  bootstrapIterations: count,
  methods: z.object({
    rates: z.string(),
    rateDifference: z.string(),
    bootstrap: z.string(),
    /** The judge's win rate (ties count half); absent from older reports, which used Wilson's interval. */
    winRate: z.string().optional(),
    /** p99 intervals and the fewest pairs that get one; absent from older reports. */
    tailQuantiles: z.string().optional(),
  }),
});
export type Statistics = z.infer<typeof StatisticsSchema>;

/** The report of one experiment over one window (DESIGN §5). */
export const ReportSchema = z.object({
  schemaVersion: z.literal(1),
  experimentId: z.string().min(1),
  window: z.object({ from: z.iso.datetime(), to: z.iso.datetime() }),
  generatedAt: z.iso.datetime(),
  statistics: StatisticsSchema,
  conservation: ConservationSchema,
  arms: z.array(ArmReportSchema),
});
export type Report = z.infer<typeof ReportSchema>;
