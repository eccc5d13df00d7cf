import { z } from 'zod';
import { countTokens } from './tokens.js';

const contentPartSchema = z.looseObject({ type: z.string(), text: z.string().optional() });

const messageSchema = z.looseObject({
  role: z.string().min(1),
  content: z.union([z.string(), z.array(contentPartSchema), z.null()]).optional(),
});

const toolSchema = z.looseObject({
  type: z.string().optional(),
  function: z.looseObject({
    name: z.string().min(1),
    parameters: z.unknown().optional(),
  }),
});

const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.string().optional(), function: z.looseObject({ name: z.string().min(1) }) }),
]);

/**
 * The part of an OpenAI chat completion request the simulator reads. Unknown fields
 * (`n`, `stop`, `top_p`…) are accepted and ignored; the sim always answers one choice.
 */
export const chatRequestSchema = z.looseObject({
  model: z.string().optional(),
  messages: z.array(messageSchema).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.int().min(1).nullish(),
  max_completion_tokens: z.int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  /** OpenAI's reproducible-sampling seed: with it, temperature noise is a function of the request. */
  seed: z.number().nullish(),
  tools: z.array(toolSchema).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
});

/** A validated chat completion request. */
export type SimChatRequest = z.output<typeof chatRequestSchema>;
/** One message of a chat completion request. */
export type SimChatMessage = SimChatRequest['messages'][number];

/** Outcome of {@link parseChatRequest}: the request, or an OpenAI-style complaint. */
export type ChatRequestParseResult =
  | { readonly ok: true; readonly request: SimChatRequest }
  | { readonly ok: false; readonly message: string; readonly param: string | null; readonly code: string | null };

/** Validates an already JSON-parsed request body. */
export function parseChatRequest(body: unknown): ChatRequestParseResult {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, message: 'The request body must be a JSON object.', param: null, code: null };
  }
  if (!('messages' in body) || body.messages === undefined) {
    return {
      ok: false,
      message: "Missing required parameter: 'messages'.",
      param: 'messages',
      code: 'missing_required_parameter',
    };
  }
  const result = chatRequestSchema.safeParse(body);
  if (result.success) return { ok: true, request: result.data };
  const issue = result.error.issues[0];
  const param = issue?.path.map(String).join('.') ?? '';
  return {
    ok: false,
    message: `Invalid value for '${param || 'body'}': ${issue?.message ?? 'invalid request'}`,
    param: param || null,
    code: 'invalid_value',
  };
}

/** The text of one message's content; non-text parts (images…) count for nothing. */
export function messageText(message: SimChatMessage): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.flatMap((part) => (typeof part.text === 'string' ? [part.text] : [])).join('\n');
  }
  return '';
}

/**
 * The prompt the answer is a function of: every message's content, in order, joined
 * by newlines. Roles are left out on purpose, so the same words give the same answer.
 */
export function promptOf(messages: readonly SimChatMessage[]): string {
  return messages.map(messageText).join('\n');
}

/** Prompt tokens: whitespace words of all message contents. */
export function promptTokensOf(messages: readonly SimChatMessage[]): number {
  return messages.reduce((sum, message) => sum + countTokens(messageText(message)), 0);
}

/** `max_completion_tokens`, else `max_tokens`, else no cap. */
export function maxTokensOf(request: SimChatRequest): number | undefined {
  return request.max_completion_tokens ?? request.max_tokens ?? undefined;
}
