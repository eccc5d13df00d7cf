/**
 * Configuration of the input adapters (DESIGN §1 "Tap an existing event bus", §6): how replay
 * reads the topics it taps — our native events, Confluent-framed Avro / JSON Schema records
 * decoded through a schema registry, or foreign JSON mapped with JSON pointers.
 */
import { z } from 'zod';

// RFC 6901 §3; kept in sync with json-pointer.ts (which the adapters use to resolve).
const pointer = z
  .string()
  .regex(/^(\/([^~/]|~[01])*)*$/, {
    error: (issue) =>
      `an RFC 6901 JSON pointer such as "/request/messages": it starts with "/" ("" is the whole record) and writes "~1" for "/" and "~0" for "~" inside a key (got ${JSON.stringify(issue.input)})`,
  });

/** Where the live answer sits in a "combined" record. */
export const StableMappingSchema = z
  .object({
    /** Text of the answer (string or null). Required unless `toolCalls` is mapped, for successful answers. */
    content: pointer.optional(),
    /** OpenAI-shaped `tool_calls` (`[{ id, type, function: { name, arguments } }]`; object arguments are serialised). */
    toolCalls: pointer.optional(),
    finishReason: pointer.optional(),
    /** Model that answered; defaults to the request's model. */
    model: pointer.optional(),
    /** Provider's response id (`chatcmpl-…`). */
    responseId: pointer.optional(),
    promptTokens: pointer.optional(),
    completionTokens: pointer.optional(),
    /** Defaults to prompt + completion. Usage is reported only when both of those resolve. */
    totalTokens: pointer.optional(),
    /** End-to-end latency in milliseconds (timing.e2eMs). Required: a side without latency cannot be compared. */
    latencyMs: pointer,
    /** Time to first token in milliseconds; null when not mapped or absent. */
    ttftMs: pointer.optional(),
    /** HTTP status of the live call; 400 and above makes the outcome `error`. */
    status: pointer.optional(),
    /** An error message or object; any non-empty value makes the outcome `error`. */
    error: pointer.optional(),
    /** Whether the live call streamed; defaults to true exactly when a TTFT resolves. */
    streamed: pointer.optional(),
    /** `endpoint.name` of the stable ResponseEvent. @defaultValue `"stable"` */
    endpointName: z.string().min(1).default('stable'),
  })
  .strict()
  .refine((stable) => stable.content !== undefined || stable.toolCalls !== undefined, {
    path: ['content'],
    message: 'map the answer: a pointer to its content, to its toolCalls, or both',
  });
export type StableMapping = z.infer<typeof StableMappingSchema>;

/**
 * Builds a RequestEvent (and, with `stable`, the stable ResponseEvent) from a foreign record.
 * "Missing" means the pointer does not resolve or resolves to null.
 */
export const FieldMappingSchema = z
  .object({
    /** The request id (a string, or an integer which is turned into a string). */
    requestId: pointer.optional(),
    /**
     * When the id is missing: `none` makes the record poison (dead letter); `key` uses the
     * Kafka key; `offset` uses `topic/partition/offset`, which is unique and stable across
     * redeliveries but pairs with a stable answer only when that answer is in the same
     * (combined) record. @defaultValue `"none"`
     */
    requestIdFallback: z.enum(['none', 'key', 'offset']).default('none'),
    /** When the request happened. Not mapped: the Kafka record timestamp. */
    occurredAt: pointer.optional(),
    /** How to read `occurredAt`; see time.ts. @defaultValue `"auto"` */
    occurredAtUnit: z.enum(['auto', 'ms', 's', 'us', 'ns', 'iso']).default('auto'),
    route: pointer.optional(),
    /** Route of records without one. @defaultValue `"/v1/chat/completions"` */
    defaultRoute: z.string().min(1).default('/v1/chat/completions'),
    tenant: pointer.optional(),
    conversationId: pointer.optional(),
    /** A whole chat-completions body; `params`, `model` and `messages` are applied on top. */
    body: pointer.optional(),
    /** The messages array; a string becomes one user message. */
    messages: pointer.optional(),
    model: pointer.optional(),
    /** An object of request parameters (temperature, max_tokens, tools, …) merged into the body; null values are dropped. */
    params: pointer.optional(),
    /** An object of request headers; only string values are kept, and credential headers never are. */
    headers: pointer.optional(),
    /** Present for "combined" records that carry the live answer too. */
    stable: StableMappingSchema.optional(),
  })
  .strict()
  .refine((mapping) => mapping.requestId !== undefined || mapping.requestIdFallback !== 'none', {
    path: ['requestId'],
    message: 'a pointer to the request id is required unless requestIdFallback is "key" or "offset"',
  })
  .refine((mapping) => mapping.messages !== undefined || mapping.body !== undefined, {
    path: ['messages'],
    message: 'a pointer to the messages is required (or to a whole chat-completions body with "body")',
  });
export type FieldMapping = z.infer<typeof FieldMappingSchema>;

/** Topics to read. Absent: `kafka.topics.requests`. */
const sourceTopics = z.array(z.string().min(1)).min(1).optional();

export const NativeInputSchema = z.object({ kind: z.literal('native'), topics: sourceTopics }).strict();

export const FieldMappingInputSchema = z.object({ kind: z.literal('field-mapping'), topics: sourceTopics, mapping: FieldMappingSchema }).strict();

export const SchemaRegistryInputSchema = z
  .object({
    kind: z.literal('schema-registry'),
    topics: sourceTopics,
    /** Applied to the decoded object; absent: the decoded object must be a native RequestEvent. */
    mapping: FieldMappingSchema.optional(),
    /** Deadline of one schema lookup (retries included); past it the record is retried later. @defaultValue 10000 */
    timeoutMs: z.number().int().positive().max(300_000).default(10_000),
  })
  .strict();

/** `experiment.input`: how replay reads the topics it taps. */
export const InputAdapterConfigSchema = z.discriminatedUnion('kind', [NativeInputSchema, FieldMappingInputSchema, SchemaRegistryInputSchema], {
  error: (issue) => (issue.code === 'invalid_union' ? 'kind must be "native", "field-mapping" or "schema-registry"' : undefined),
});
export type InputAdapterConfig = z.infer<typeof InputAdapterConfigSchema>;
/** The configuration as written (defaults not yet applied). */
export type InputAdapterConfigInput = z.input<typeof InputAdapterConfigSchema>;
