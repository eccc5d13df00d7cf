import { z } from 'zod';
import { InputAdapterConfigSchema } from './input-config.js';
import { DEFAULT_EVAL_QUEUE, DEFAULT_KEY_PREFIX, DEFAULT_TOPICS } from './topics.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" or "-", at most 64, starting with a letter or digit');
const url = z.url({ protocol: /^https?$/, error: 'an http(s) URL' });
const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);

/**
 * Retries of one model call (a candidate's or the judge's). Retried: connection errors, 5xx and
 * 429. The wait before a retry is the server's Retry-After when it sent one, else a full-jitter
 * exponential backoff (a random wait up to `baseDelayMs × 2^(retry − 1)`, at most `maxDelayMs`);
 * a Retry-After longer than `maxDelayMs` ends the retries (retrying sooner than asked is what a
 * rate limit punishes).
 */
const CallRetrySchema = z
  .object({
    /** Calls at most, the first included. @defaultValue 3 */
    attempts: z.number().int().min(1).max(10).default(3),
    /** @defaultValue 200 */
    baseDelayMs: z.number().int().positive().default(200),
    /** @defaultValue 10000 */
    maxDelayMs: z.number().int().positive().default(10_000),
  })
  .strict()
  .prefault({});

export const TopicsConfigSchema = z
  .object({
    requests: z.string().min(1).default(DEFAULT_TOPICS.requests),
    stableResponses: z.string().min(1).default(DEFAULT_TOPICS.stableResponses),
    candidateResponses: z.string().min(1).default(DEFAULT_TOPICS.candidateResponses),
    evaluations: z.string().min(1).default(DEFAULT_TOPICS.evaluations),
    deadLetter: z.string().min(1).default(DEFAULT_TOPICS.deadLetter),
  })
  .strict()
  .prefault({});

export const KafkaConfigSchema = z
  .object({
    clientId: z.string().min(1).default('shadow-replay'),
    topics: TopicsConfigSchema,
    /** Partitions for topics the services create when missing. */
    partitions: z.number().int().min(1).max(1024).default(3),
    /** Create missing topics at start. */
    createTopics: z.boolean().default(true),
  })
  .strict()
  .prefault({});

export const RedisConfigSchema = z
  .object({
    keyPrefix: z.string().min(1).regex(/^[^{}]+$/, 'no "{" or "}" (the keys\' Redis Cluster hash tags are added to it)').default(DEFAULT_KEY_PREFIX),
    evalQueue: z.string().regex(/^[^:]+$/, 'no ":"').default(DEFAULT_EVAL_QUEUE),
  })
  .strict()
  .prefault({});

export const HttpListenSchema = z.object({ host: host.default('127.0.0.1'), port: port }).strict();

const loopbackHost = host.refine(
  (value) => value === 'localhost' || value === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(value),
  'a loopback address (127.0.0.1, ::1 or localhost): the admin endpoint changes what is published',
);

export const EndpointConfigSchema = z
  .object({
    name: name,
    baseUrl: url,
    /** Replaces the request's `model`. */
    model: z.string().min(1).optional(),
    /** Name of the environment variable holding the API key; the key itself never goes in the file. */
    apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name such as CANDIDATE_API_KEY').optional(),
    headers: z.record(z.string(), z.string()).default({}),
    timeouts: z
      .object({
        firstTokenMs: z.number().int().positive().default(30_000),
        totalMs: z.number().int().positive().default(120_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const CandidateConfigSchema = EndpointConfigSchema.extend({
  /** Deadlines of one call to the candidate; each one ends the call as an `error` with its own code. */
  timeouts: z
    .object({
      /** TCP (and TLS) connection to the candidate; `connect_error` when it takes longer. */
      connectMs: z.number().int().positive().max(600_000).default(5_000),
      /**
       * From sending the request to the first chunk carrying content, reasoning or a tool-call
       * delta (DESIGN §4's first token); role chunks and keep-alive comments do not count. An
       * answer that is not streamed must have its headers by then. `first_token_timeout`.
       */
      firstTokenMs: z.number().int().positive().default(30_000),
      /** Longest silence between two pieces of the answer, any bytes counting; absent = `firstTokenMs`. `stream_idle_timeout`. */
      idleMs: z.number().int().positive().optional(),
      /** The whole call, streaming included. `total_timeout`. */
      totalMs: z.number().int().positive().default(120_000),
    })
    .strict()
    .prefault({}),
  /** Stream from the candidate (needed for TTFT, TPOT and ITL). */
  stream: z.boolean().default(true),
  /**
   * A control arm points at the stable model itself: its disagreement with stable is the model's
   * own noise, which the report subtracts before it flags a regression (DESIGN §4).
   */
  control: z.boolean().default(false),
  /** Limits that hold across every replay instance (kept in Redis). */
  rate: z
    .object({
      /** Requests per second, evenly spaced (no bursts); absent = as fast as concurrency allows. */
      rps: z.number().positive().optional(),
      /** Prompt plus expected output tokens per minute. */
      tokensPerMinute: z.number().positive().optional(),
      /** Calls in flight at once, all instances together. */
      concurrency: z.number().int().min(1).max(10_000).default(8),
      /** Output tokens assumed for a request without max_tokens, for the tokens/min limit and budgets. */
      expectedOutputTokens: z.number().int().positive().default(256),
      /**
       * Adaptive pacing: `rps` becomes the ceiling; the pace is cut when the candidate pushes back
       * (429, 5xx, timeouts, latency above the target) and recovers slowly while it does not.
       * Shared by every replay instance through Redis. Absent = fixed pace.
       */
      adaptive: z
        .object({
          /** The pace never goes below this. */
          minRps: z.number().positive().default(0.2),
          /** Pace at the start of the experiment; default the ceiling (`rps`). */
          startRps: z.number().positive().optional(),
          /** A call slower than this (by `latencyMetric`) counts as push-back; absent = latency is ignored. */
          targetLatencyMs: z.number().int().positive().optional(),
          latencyMetric: z.enum(['ttft', 'e2e']).default('ttft'),
          /** Multiplier applied on push-back (0.5 halves the pace). */
          decreaseFactor: z.number().gt(0).lt(1).default(0.5),
          /** After a cut, further push-back within this is the same episode and does not cut again. */
          cooldownMs: z.number().int().min(0).default(2_000),
          /** Requests/s added per `increaseEveryMs` of calls without push-back; default 5% of the ceiling. */
          increaseRps: z.number().positive().optional(),
          increaseEveryMs: z.number().int().positive().default(2_000),
        })
        .strict()
        .optional(),
    })
    .strict()
    .superRefine((rate, ctx) => {
      if (rate.adaptive === undefined) return;
      if (rate.rps === undefined) {
        ctx.addIssue({ code: 'custom', path: ['rps'], message: 'required with adaptive pacing: it is the ceiling the pace recovers to' });
        return;
      }
      if (rate.adaptive.minRps > rate.rps) ctx.addIssue({ code: 'custom', path: ['adaptive', 'minRps'], message: `must be <= rps (${rate.rps})` });
      const start = rate.adaptive.startRps;
      if (start !== undefined && (start > rate.rps || start < rate.adaptive.minRps)) {
        ctx.addIssue({ code: 'custom', path: ['adaptive', 'startRps'], message: `must be between minRps (${rate.adaptive.minRps}) and rps (${rate.rps})` });
      }
    })
    .prefault({}),
  /** Connection errors, 5xx and 429 are retried (Retry-After honoured); each retry counts against `budget.maxRequests`. */
  retry: CallRetrySchema,
  circuit: z
    .object({
      /** Open when at least this fraction of the last `window` calls failed. */
      failureRate: z.number().gt(0).max(1).default(0.5),
      /**
       * The fewest calls within `windowMs` before the rate can open the circuit. 50 keeps a
       * candidate with a steady 20% error rate from tripping it by chance.
       */
      window: z.number().int().min(1).default(50),
      /** Calls are counted over this much time. */
      windowMs: z.number().int().positive().default(30_000),
      /** How long the circuit stays open before one probe (a single call, not retried) is let through; no retry goes out while it is not closed. */
      openMs: z.number().int().positive().default(15_000),
    })
    .strict()
    .prefault({}),
  /**
   * What to do with requests that carry tools: `record` (send them; the candidate's tool calls are
   * recorded, never executed), `strip` (remove tools and tool messages), `skip` (count as filtered).
   */
  toolPolicy: z.enum(['record', 'strip', 'skip']).default('record'),
  /** Changes applied to every request before it is sent to this candidate. */
  transforms: z
    .object({
      /** Replace the system prompt (or add one), or put text before the existing one. */
      systemPrompt: z.object({ mode: z.enum(['replace', 'prepend']), text: z.string() }).strict().optional(),
      /** Parameters set on every request, e.g. `{ temperature: 0, top_p: 1 }`. */
      params: z.record(z.string(), z.unknown()).default({}),
      /** Upper bound on max_tokens sent to the candidate. */
      maxTokensCap: z.number().int().positive().optional(),
      /**
       * Sets max_tokens from the live answer's length: `factor` × its completion tokens, at least
       * `minimum`, never above the request's own limit or `maxTokensCap`. Applies where replay has
       * the live answer when it calls: combined records (request and answer in one record) and
       * window replays (the window's stable answers are loaded first). A live native request
       * arrives without its answer (the gateway publishes that to the stable topic, read by the
       * join), so there, and for a request whose live answer failed or has no usage, only
       * `maxTokensCap` applies.
       */
      maxTokensFromStable: z
        .object({
          factor: z.number().min(1, 'must be >= 1: a candidate allowed fewer tokens than the live answer used is cut short').max(100).default(1.5),
          minimum: z.number().int().positive().default(16),
        })
        .strict()
        .optional(),
    })
    .strict()
    .superRefine((transforms, ctx) => {
      const { maxTokensCap, maxTokensFromStable } = transforms;
      if (maxTokensCap !== undefined && maxTokensFromStable !== undefined && maxTokensFromStable.minimum > maxTokensCap) {
        ctx.addIssue({ code: 'custom', path: ['maxTokensFromStable', 'minimum'], message: `must be <= maxTokensCap (${maxTokensCap})` });
      }
    })
    .prefault({}),
  prices: z.object({ inputPerMillion: z.number().nonnegative(), outputPerMillion: z.number().nonnegative() }).strict().optional(),
}).strict();
export type CandidateConfig = z.infer<typeof CandidateConfigSchema>;

export const ExperimentConfigSchema = z
  .object({
    id: name,
    /**
     * Where a new experiment starts reading the request topic: `latest` taps live traffic from
     * now on; `earliest` replays everything the topic still holds.
     */
    startFrom: z.enum(['earliest', 'latest']).default('latest'),
    /** How replay reads the topics it taps (DESIGN §1). Default: native events on `kafka.topics.requests`. */
    input: InputAdapterConfigSchema.prefault({ kind: 'native' }),
    /** Fraction of consumed requests replayed; the rest are `sampled_out`. */
    sampling: z.object({ rate: z.number().min(0).max(1).default(1) }).strict().prefault({}),
    /** Only requests matching every filter given are replayed; the rest are counted `filtered`. */
    filters: z
      .object({
        routes: z.array(z.string()).optional(),
        models: z.array(z.string()).optional(),
        /** Matched against the request event's `tenant` (the gateway reads it from `x-tenant-id`). */
        tenants: z.array(z.string()).optional(),
      })
      .strict()
      .prefault({}),
    candidates: z
      .array(CandidateConfigSchema)
      .min(1)
      .refine((list) => new Set(list.map((c) => c.name)).size === list.length, 'candidate names must be unique')
      .refine((list) => list.every((c) => c.name !== 'stable'), '"stable" is the live arm and cannot name a candidate')
      .refine((list) => list.filter((c) => c.control).length <= 1, 'at most one candidate can be the control arm'),
    stablePrices: z.object({ inputPerMillion: z.number().nonnegative(), outputPerMillion: z.number().nonnegative() }).strict().optional(),
    /** Limits for each arm, across all replay instances; when one is reached the arm sheds as `shed_budget`. */
    budget: z
      .object({
        /** Calls to the candidate, retries included. */
        maxRequests: z.number().int().positive().optional(),
        maxTokens: z.number().int().positive().optional(),
        /** In the currency of the prices; every arm must then have `prices`. */
        maxCost: z.number().positive().optional(),
        /** ISO time after which nothing more is sent. */
        endAt: z.iso.datetime({ offset: true }).optional(),
      })
      .strict()
      .prefault({}),
    /** Live mode: requests older than this when read are shed as `shed_lag`, keeping shadowing near real time. */
    maxLagMs: z.number().int().positive().optional(),
    join: z.object({ windowMs: z.number().int().positive().default(15 * 60_000) }).strict().prefault({}),
    /** Gates of the per-arm verdict (DESIGN §4). */
    verdict: z
      .object({
        minSamples: z.number().int().min(1).default(30),
        /** Candidate p99 E2E ÷ stable p99 E2E, at most. */
        maxP99E2eRatio: z.number().positive().default(1.2),
        /**
         * Increase of the error rate over stable's, at most, as a fraction (0.005 = 0.5 points),
         * read on its 95% interval: pass needs the interval's upper end within it, so with no errors
         * at all about 800 requests per side are needed before a 0.5-point gate can pass.
         */
        maxErrorRateIncrease: z.number().min(0).max(1).default(0.005),
        /** Judge win rate of the candidate (ties count half), at least; checked when the judge ran. */
        minJudgeWinRate: z.number().min(0).max(1).default(0.45),
        /** With a control arm: a disagreement regresses when both margins over the control are exceeded. */
        noise: z
          .object({
            relativeThreshold: z.number().min(0).max(1).default(0.2),
            absoluteThreshold: z.number().min(0).max(1).default(0.03),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** How the report slices each arm's pairs (by route, model and tenant). */
    slices: z
      .object({
        /**
         * The request header naming the tenant, looked up among the headers the gateway published
         * (so it must be in `gateway.headerAllowlist`); a request without it falls back to the
         * request event's own `tenant`. @defaultValue `x-tenant-id` (DEFAULT_TENANT_HEADER)
         */
        tenantHeader: z
          .string()
          .toLowerCase()
          .min(1)
          .refine((name) => !SECRET_HEADERS.includes(name), 'a credential header is never published')
          .optional(),
      })
      .strict()
      .prefault({}),
    /** LLM-as-judge, pairwise and position-swapped (DESIGN §4). Absent: no judge calls. */
    judge: z
      .object({
        baseUrl: url,
        model: z.string().min(1),
        apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name such as JUDGE_API_KEY').optional(),
        /** Instructions to the judge; absent = the built-in rubric (correctness, helpfulness, clarity). */
        rubric: z.string().min(1).optional(),
        /** Fraction of pairs judged (decided by request id, so a re-evaluation judges the same pairs). */
        sampleRate: z.number().min(0).max(1).default(1),
        timeouts: z.object({ totalMs: z.number().int().positive().default(60_000) }).strict().prefault({}),
        /** Judge calls across all evaluator instances. */
        rate: z.object({ rps: z.number().positive().optional(), concurrency: z.number().int().min(1).default(4) }).strict().prefault({}),
        prices: z.object({ inputPerMillion: z.number().nonnegative(), outputPerMillion: z.number().nonnegative() }).strict().optional(),
        /**
         * Retries of each judge call (connection errors, 5xx, 429 with its Retry-After honoured);
         * a call still failing fails this run of the pair's evaluation, which `evaluator.attempts`
         * runs again.
         */
        retry: CallRetrySchema,
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((experiment, ctx) => {
    if (experiment.budget.maxCost === undefined) return;
    // Without prices an arm's calls cost 0 and a cost budget would never stop it.
    experiment.candidates.forEach((candidate, index) => {
      if (candidate.prices === undefined) ctx.addIssue({ code: 'custom', path: ['candidates', index, 'prices'], message: `required with budget.maxCost (${experiment.budget.maxCost}): without prices the arm's cost is 0 and the cost budget never stops it` });
    });
  });
export type ExperimentConfig = z.infer<typeof ExperimentConfigSchema>;

/** The header the tenant is read from when `experiment.slices.tenantHeader` is not set. */
export const DEFAULT_TENANT_HEADER = 'x-tenant-id';

/** Headers that carry credentials; they are never published, whatever the allowlist says. */
export const SECRET_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'api-key', 'openai-api-key'];

const regexSource = z.string().min(1).refine((source) => {
  try {
    new RegExp(source, 'g');
    return true;
  } catch {
    return false;
  }
}, 'a valid JavaScript regular expression');

export const RedactionBuiltin = { email: 'email', phone: 'phone', card: 'card', apiKey: 'apiKey' } as const;
export type RedactionBuiltin = (typeof RedactionBuiltin)[keyof typeof RedactionBuiltin];

/** The one route the gateway can shadow (the event contract carries chat-completions bodies). */
export const SHADOWABLE_ROUTE = '/v1/chat/completions';
const shadowableOnly = `only ${SHADOWABLE_ROUTE} can be shadowed: events carry chat-completions bodies and replay calls candidates' chat endpoint; other routes are relayed through gateway.passThrough`;

export const GatewaySamplingSchema = z
  .object({
    /** Fraction of requests published to Kafka. Changeable at runtime (SIGHUP, admin endpoint). */
    rate: z.number().min(0).max(1).default(1),
    /**
     * Decide by this request header (tenant, user, conversation id) instead of the request id, so
     * every request with the same value gets the same decision (a conversation is shadowed whole).
     * Requests without the header fall back to the request id.
     */
    keyHeader: z.string().toLowerCase().optional(),
    /** Salt of the sampling hash; change it to draw another sample at the same rate. */
    salt: z.string().default('shadow-replay'),
    /**
     * Routes shadowed: `['/v1/chat/completions']`, or `[]` to shadow nothing. Only chat
     * completions can be: a RequestEvent carries a chat-completions body, and replay, join and
     * evaluator call and compare chat completions; `/v1/completions` and `/v1/embeddings` have
     * no `messages` to replay, so they are relayed (`passThrough`), never shadowed.
     * @defaultValue `['/v1/chat/completions']`
     */
    routes: z.array(z.string().refine((route) => route === SHADOWABLE_ROUTE, shadowableOnly)).default([SHADOWABLE_ROUTE]),
    /** When set, only requests for these models are shadowed. */
    models: z.array(z.string()).optional(),
    /** A request carrying this header (any value but `0`/`false`) is never published. */
    optOutHeader: z.string().toLowerCase().default('x-shadow-opt-out'),
  })
  .strict()
  .prefault({});

export const GatewayConfigSchema = z
  .object({
    listen: HttpListenSchema.prefault({ port: 8080 }),
    stable: EndpointConfigSchema,
    sampling: GatewaySamplingSchema,
    /** Request headers copied into the RequestEvent; credentials are refused. */
    headerAllowlist: z
      .array(z.string().toLowerCase())
      .default(['user-agent', 'x-tenant-id', 'x-conversation-id', 'openai-organization'])
      .refine((list) => list.every((name) => !SECRET_HEADERS.includes(name)), `credential headers (${SECRET_HEADERS.join(', ')}) are never published`),
    /**
     * Where each published request's id (its events' Kafka key and the join's key) comes from.
     * `generate`: a fresh UUID for every request; the client's `x-request-id` is published among
     * the headers and echoed back, never used as a key, so no client can make two requests share
     * one. `client`: the client's `x-request-id` when it is 1–128 of `A-Z a-z 0-9 . _ ~ -` and
     * this instance has not adopted it among its last 100,000, else a fresh UUID: only for
     * clients that guarantee unique ids. @defaultValue `generate`
     */
    requestIds: z.enum(['generate', 'client']).default('generate'),
    /** Routes relayed to the stable endpoint as they are (any method, body streamed both ways), never shadowed. */
    passThrough: z
      .array(
        z
          .string()
          .startsWith('/')
          .refine((route) => route !== SHADOWABLE_ROUTE, `${SHADOWABLE_ROUTE} is the shadowed route, not a pass-through one; to shadow nothing set sampling.routes: [] or sampling.rate: 0`),
      )
      .default(['/v1/models', '/v1/completions', '/v1/embeddings']),
    /** Every string published (request body, tools, tool calls, metadata, the stable answer, header values) is redacted; the live request is untouched. */
    redaction: z
      .object({
        builtins: z.array(z.enum(['email', 'phone', 'card', 'apiKey'])).default(['email', 'phone', 'card', 'apiKey']),
        patterns: z.array(z.object({ name: z.string().min(1), regex: regexSource, replacement: z.string().optional() }).strict()).default([]),
      })
      .strict()
      .prefault({}),
    /** Larger events are counted as `too_large` and not published; the user is unaffected. */
    maxEventBytes: z.number().int().positive().default(1024 * 1024),
    maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
    buffer: z
      .object({ maxEvents: z.number().int().positive().default(10_000), maxBytes: z.number().int().positive().default(64 * 1024 * 1024) })
      .strict()
      .prefault({}),
    /**
     * What the live path may hold for the publisher thread. Past a bound the exchange is dropped
     * and counted (`handoff_full`, `too_large`); the live path never waits on the thread.
     */
    handoff: z
      .object({
        /** Exchanges handed to the publisher thread that it has not taken in yet. @defaultValue 5000 */
        maxExchanges: z.number().int().positive().default(5_000),
        /** Bytes of those exchanges (request body and relayed answer each). @defaultValue 64 MiB */
        maxBytes: z.number().int().positive().default(64 * 1024 * 1024),
        /**
         * Bytes of one exchange kept for publishing: the request body plus the answer as relayed
         * (SSE framing included, so a streamed answer takes several times its text). A larger
         * exchange stops being kept and is counted `too_large`; its relay is untouched.
         * @defaultValue 4 MiB
         */
        maxCaptureBytes: z.number().int().positive().default(4 * 1024 * 1024),
      })
      .strict()
      .refine((handoff) => handoff.maxCaptureBytes <= handoff.maxBytes, { message: 'maxCaptureBytes must not exceed maxBytes (one exchange must fit in the hand-off)', path: ['maxCaptureBytes'] })
      .prefault({}),
    /**
     * The admin endpoint (`GET`/`PUT /admin/sampling`) on its own listener, bound to loopback
     * only: it changes what is published, so it is never served on the public listener. Absent:
     * no admin endpoint (SIGHUP still reloads the sampling rate).
     */
    admin: z.object({ host: loopbackHost.default('127.0.0.1'), port: port }).strict().optional(),
    /**
     * At SIGTERM, once in-flight requests finished, the time allowed to flush the publish buffer;
     * what is left is dropped and counted `shutdown`. @defaultValue 5000
     */
    flushDeadlineMs: z.number().int().positive().default(5_000),
    /** The connection pool to the stable endpoint. */
    upstream: z
      .object({
        /**
         * Connections (so calls in flight) the gateway may hold to the stable endpoint. A proxy
         * must not cap the live path below what users send: keep it above the peak of calls in
         * flight (requests/s × seconds per call). `0` means no limit. @defaultValue 4096
         */
        connections: z.number().int().min(0).default(4096),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const serviceListen = (defaultPort: number) => z.object({ listen: HttpListenSchema.prefault({ port: defaultPort }) });

export const ReplayConfigSchema = serviceListen(9101)
  .extend({
    /** Records of one fetched batch handled at once (each waits for its arm's pace). */
    batchConcurrency: z.number().int().min(1).default(64),
    /**
     * Bytes fetched per partition at once (a larger record still comes whole). kafkajs fetches
     * again only once a fetch's batches are all done, so each batch boundary leaves the arm
     * briefly without waiting records: large batches make that rare (bench:replay measured 96%
     * of the target rate at 128 KiB, 100% at 1 MiB). A rebalance or a stop does not wait for a
     * batch: records still waiting for their rate slot are handed over. @defaultValue 1048576
     */
    maxBytesPerPartition: z.number().int().min(1024).default(1_048_576),
    /**
     * Largest candidate answer event published (it carries the request it answers). Keep it below
     * the broker's `message.max.bytes` (1 MiB by default) for the candidate response topic: a
     * larger answer is not published; its request record is dead-lettered with reason
     * `too_large` and counted `dead_letter`. @defaultValue 1000000
     */
    maxAnswerBytes: z.number().int().min(1024).default(1_000_000),
    /**
     * A window replay (`--from T1 --to T2`) takes the records whose timestamps are in [T1, T2).
     * Timestamps need not grow with offsets (several gateways, their clocks and buffers), so it
     * reads on past the first record stamped T2 until the first stamped T2 + this, to find records
     * of the window written that much later. Records read with timestamps outside the window are
     * not part of it: not consumed, not counted. @defaultValue 300000 (5 minutes)
     */
    windowLateMs: z.number().int().min(0).default(300_000),
  })
  .strict()
  .prefault({});
export const JoinConfigSchema = serviceListen(9102)
  .extend({
    sweepIntervalMs: z.number().int().positive().default(1_000),
    /**
     * Largest response event (bytes as read from Kafka) the join keeps for a pair. A pair with a
     * larger side is not paired: the candidate record is dead-lettered as `too_large` and the
     * request counted `dead_letter`. Bounds the Redis memory of a waiting pair and of its job.
     */
    maxPayloadBytes: z.number().int().min(1024).default(1024 * 1024),
    /**
     * How long a pair whose window expired is remembered, so that a side arriving afterwards is
     * dead-lettered as `late_arrival` (never paired, never counted twice) instead of starting a new wait.
     */
    lateArrivalTtlMs: z.number().int().positive().default(24 * 3600_000),
  })
  .strict()
  .prefault({});
/** How the evaluator spaces the runs of a pair's evaluation. */
export const EvaluationBackoff = { exponential: 'exponential', fixed: 'fixed' } as const;
export type EvaluationBackoff = (typeof EvaluationBackoff)[keyof typeof EvaluationBackoff];

export const EvaluatorConfigSchema = serviceListen(9103)
  .extend({
    /** Pairs this instance evaluates at once. @defaultValue 16 */
    concurrency: z.number().int().min(1).default(16),
    /**
     * Runs of a pair's evaluation at most, the first included. A run that fails for a reason that
     * may pass (the judge still unreachable after its own retries, Kafka refusing the record) is
     * run again after `backoff`; after the last the pair is counted `eval_failed` with its reason.
     * A pair also survives this many worker kills (stalls). The join stamps it on each pair's job.
     * @defaultValue 3
     */
    attempts: z.number().int().min(1).max(20).default(3),
    backoff: z
      .object({
        /** `exponential`: `delayMs × 2^(run − 1)` before run `run + 1`; `fixed`: `delayMs` every time. @defaultValue "exponential" */
        type: z.enum(EvaluationBackoff).default(EvaluationBackoff.exponential),
        /** @defaultValue 1000 */
        delayMs: z.number().int().min(0).max(3_600_000).default(1_000),
        /**
         * Fraction of each wait drawn at random (a wait of `d` becomes uniform in
         * `[d × (1 − jitter), d]`), so pairs that failed together do not come back together.
         * A judge's Retry-After longer than the wait replaces it. @defaultValue 0.5
         */
        jitter: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

/** The whole configuration file (DESIGN §6). Addresses and secrets come from the environment. */
export const ShadowConfigSchema = z
  .object({
    kafka: KafkaConfigSchema,
    redis: RedisConfigSchema,
    gateway: GatewayConfigSchema.optional(),
    experiment: ExperimentConfigSchema.optional(),
    replay: ReplayConfigSchema,
    join: JoinConfigSchema,
    evaluator: EvaluatorConfigSchema,
  })
  .strict()
  .superRefine((config, ctx) => {
    // Checked only when set explicitly: the default must not break a gateway that publishes no tenant.
    const tenantHeader = config.experiment?.slices.tenantHeader;
    if (tenantHeader === undefined || config.gateway === undefined || config.gateway.headerAllowlist.includes(tenantHeader)) return;
    ctx.addIssue({
      code: 'custom',
      path: ['experiment', 'slices', 'tenantHeader'],
      message: `${tenantHeader} is not in gateway.headerAllowlist, so the gateway never publishes it; add it there or choose a published header`,
    });
  });
export type ShadowConfig = z.infer<typeof ShadowConfigSchema>;
export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type TopicsConfig = z.infer<typeof TopicsConfigSchema>;

/** Addresses of the infrastructure, from the environment (DESIGN §6). */
export interface Addresses {
  kafkaBrokers: string[];
  redisUrl: string;
  schemaRegistryUrl: string | undefined;
}
