import { z } from 'zod';

const msEpoch = z.number().int().nonnegative();
const id = z.string().min(1).max(256);

/** One message of an OpenAI chat-completions request; unknown fields are kept. */
export const ChatMessageSchema = z.looseObject({
  role: z.string().min(1),
  content: z.unknown().optional(),
});

/** The OpenAI chat-completions request body, after redaction. Unknown parameters are kept. */
export const ChatRequestSchema = z.looseObject({
  model: z.string().optional(),
  messages: z.array(ChatMessageSchema).min(1),
  stream: z.boolean().optional(),
  max_tokens: z.number().int().positive().optional(),
  max_completion_tokens: z.number().int().positive().optional(),
  temperature: z.number().optional(),
});
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

export const SamplingDecisionSchema = z.object({
  /** Fraction of traffic published, in [0, 1]. */
  rate: z.number().min(0).max(1),
  /** What the decision was keyed on (`tenant`, a header name, …), or null for uniform. */
  key: z.string().nullable(),
  sampled: z.boolean(),
});
export type SamplingDecision = z.infer<typeof SamplingDecisionSchema>;

export const RequestEventSchema = z.object({
  schemaVersion: z.literal(1),
  requestId: id,
  occurredAt: msEpoch,
  route: z.string().min(1),
  tenant: z.string().optional(),
  conversationId: z.string().optional(),
  sampling: SamplingDecisionSchema,
  body: ChatRequestSchema,
  headers: z.record(z.string(), z.string()),
});
export type RequestEvent = z.infer<typeof RequestEventSchema>;

export const ResponseOutcome = { ok: 'ok', error: 'error', aborted: 'aborted' } as const;
export type ResponseOutcome = (typeof ResponseOutcome)[keyof typeof ResponseOutcome];

export const ToolCallSchema = z.object({
  id: z.string().optional(),
  type: z.string().default('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

export const ChoiceSchema = z.object({
  index: z.number().int().nonnegative(),
  content: z.string().nullable(),
  toolCalls: z.array(ToolCallSchema),
  finishReason: z.string().nullable(),
});
export type Choice = z.infer<typeof ChoiceSchema>;

export const AssembledResponseSchema = z.object({
  id: z.string().optional(),
  model: z.string().optional(),
  choices: z.array(ChoiceSchema),
});
export type AssembledResponse = z.infer<typeof AssembledResponseSchema>;

export const UsageSchema = z.object({
  prompt: z.number().int().nonnegative(),
  completion: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  source: z.enum(['usage', 'estimate']),
});
export type Usage = z.infer<typeof UsageSchema>;

export const ItlSummarySchema = z.object({
  n: z.number().int().nonnegative(),
  p50: z.number(),
  p90: z.number(),
  p99: z.number(),
  max: z.number(),
});
export type ItlSummary = z.infer<typeof ItlSummarySchema>;

/** Client-side timing, DESIGN §4. Durations in milliseconds from `sentAt`. */
export const TimingSchema = z.object({
  sentAt: msEpoch,
  ttftMs: z.number().nonnegative().nullable(),
  e2eMs: z.number().nonnegative(),
  tpotMs: z.number().nonnegative().nullable(),
  itl: ItlSummarySchema.nullable(),
  outputTokensPerSec: z.number().nonnegative().nullable(),
});
export type Timing = z.infer<typeof TimingSchema>;

export const ResponseErrorSchema = z.object({
  code: z.string().min(1),
  message: z.string(),
  retryable: z.boolean(),
});
export type ResponseError = z.infer<typeof ResponseErrorSchema>;

/**
 * What the RequestEvent said about the request an answer belongs to, copied onto the answer so
 * that the join and the evaluator, which read only ResponseEvents, can slice the report by
 * route, model and tenant. `headers` are the allowlisted headers the gateway published, never
 * credentials.
 */
export const RequestOriginSchema = z.object({
  route: z.string().min(1),
  /** The request's occurredAt (ms since the epoch), which places its pair in a report window; absent from older events. */
  occurredAt: msEpoch.optional(),
  /** The model the client asked for (the request body's `model`), before any candidate override. */
  model: z.string().optional(),
  tenant: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
});
export type RequestOrigin = z.infer<typeof RequestOriginSchema>;

/** The {@link RequestOrigin} of a request event, for the ResponseEvents answering it. */
export function requestOrigin(event: RequestEvent): RequestOrigin {
  return {
    route: event.route,
    occurredAt: event.occurredAt,
    ...(event.body.model === undefined ? {} : { model: event.body.model }),
    ...(event.tenant === undefined ? {} : { tenant: event.tenant }),
    headers: event.headers,
  };
}

export const ResponseEventSchema = z.object({
  schemaVersion: z.literal(1),
  requestId: id,
  /** Set on candidate responses; the stable answer belongs to no experiment. */
  experimentId: id.optional(),
  arm: id,
  occurredAt: msEpoch,
  endpoint: z.object({ name: z.string(), model: z.string().nullable() }),
  outcome: z.enum(['ok', 'error', 'aborted']),
  status: z.number().int().nullable(),
  error: ResponseErrorSchema.nullable(),
  response: AssembledResponseSchema.nullable(),
  usage: UsageSchema.nullable(),
  timing: TimingSchema,
  streamed: z.boolean(),
  /** Candidate responses carry the request exactly as sent to the candidate (after transforms). */
  request: ChatRequestSchema.optional(),
  /** Hash of the candidate's configuration, for provenance. */
  configHash: z.string().optional(),
  /** The request's route, model, tenant and published headers; absent from events written before it existed. */
  origin: RequestOriginSchema.optional(),
});
export type ResponseEvent = z.infer<typeof ResponseEventSchema>;

export const SourceOffsetSchema = z.object({
  topic: z.string(),
  partition: z.number().int().nonnegative(),
  offset: z.string(),
});
export type SourceOffset = z.infer<typeof SourceOffsetSchema>;

export const PairJobSchema = z.object({
  schemaVersion: z.literal(1),
  experimentId: id,
  requestId: id,
  arm: id,
  request: ChatRequestSchema.nullable(),
  stable: ResponseEventSchema,
  candidate: ResponseEventSchema,
  sources: z.object({ stable: SourceOffsetSchema, candidate: SourceOffsetSchema }),
});
export type PairJob = z.infer<typeof PairJobSchema>;

export const SideFiguresSchema = z.object({
  outcome: z.enum(['ok', 'error', 'aborted']),
  e2eMs: z.number().nonnegative(),
  ttftMs: z.number().nonnegative().nullable(),
  tpotMs: z.number().nonnegative().nullable(),
  /**
   * Gaps between successive content chunks of this side's answer (DESIGN §4): count, p50, p90,
   * p99 and max in ms; null when the answer did not stream two content chunks. Absent from
   * records written before it existed.
   */
  itl: ItlSummarySchema.nullable().optional(),
  /** Completion tokens / (last content chunk − first content chunk), per second; null when not measurable. Absent from older records. */
  outputTokensPerSec: z.number().nonnegative().nullable().optional(),
  promptTokens: z.number().int().nonnegative().nullable(),
  completionTokens: z.number().int().nonnegative().nullable(),
  costUsd: z.number().nonnegative().nullable(),
});
export type SideFigures = z.infer<typeof SideFiguresSchema>;

/** Comparison metrics per pair. Later versions add fields; readers ignore what they do not know. */
export const ComparisonSchema = z.looseObject({
  exactMatch: z.boolean(),
  normalizedMatch: z.boolean(),
  lengthRatio: z.number().nonnegative().nullable(),
  finishReasonAgreement: z.boolean(),
});
export type Comparison = z.infer<typeof ComparisonSchema>;

export const EvaluationRecordSchema = z.object({
  schemaVersion: z.literal(1),
  experimentId: id,
  requestId: id,
  arm: id,
  evaluatedAt: msEpoch,
  stable: SideFiguresSchema,
  candidate: SideFiguresSchema,
  deltas: z.object({
    e2eMs: z.number(),
    ttftMs: z.number().nullable(),
  }),
  comparison: ComparisonSchema,
  judge: z.looseObject({ verdict: z.string() }).nullable(),
  /** The request's route, requested model and tenant, for the report's slices; absent when the pair did not carry them. */
  route: z.string().optional(),
  model: z.string().optional(),
  tenant: z.string().optional(),
  provenance: z.object({
    sources: z.object({ stable: SourceOffsetSchema, candidate: SourceOffsetSchema }),
    candidateConfigHash: z.string().nullable(),
    judgePromptHash: z.string().nullable(),
    evaluatorVersion: z.string(),
    /**
     * When the request was made (the RequestEvent's occurredAt, carried on the candidate answer's
     * `origin`): a windowed report selects records by it, as the outcome counters' minutes are
     * keyed by it. Absent from records of older evaluators or answers.
     */
    requestOccurredAt: msEpoch.optional(),
  }),
});
export type EvaluationRecord = z.infer<typeof EvaluationRecordSchema>;
