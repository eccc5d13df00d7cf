import { randomBytes } from 'node:crypto';
import type { SimCompletion, SimFinishReason } from './completion.js';

/** OpenAI error `type` values the simulator sends. */
export const OpenAiErrorType = {
  InvalidRequest: 'invalid_request_error',
  Server: 'server_error',
  // OpenAI itself labels 429s with type "requests" and code "rate_limit_exceeded".
  RateLimit: 'requests',
} as const;
export type OpenAiErrorType = (typeof OpenAiErrorType)[keyof typeof OpenAiErrorType];

/** The OpenAI error body: `{"error":{"message","type","param","code"}}`. */
export interface OpenAiErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: string;
    readonly param: string | null;
    readonly code: string | null;
  };
}

export function errorBody(
  message: string,
  type: OpenAiErrorType,
  param: string | null = null,
  code: string | null = null,
): OpenAiErrorBody {
  return { error: { message, type, param, code } };
}

/** Fields shared by a response and all its chunks. */
export interface CompletionMeta {
  readonly id: string;
  readonly created: number;
  readonly model: string;
}

export function newCompletionMeta(model: string): CompletionMeta {
  return { id: `chatcmpl-${randomBytes(12).toString('hex')}`, created: Math.floor(Date.now() / 1000), model };
}

function toolCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

function usageOf(completion: SimCompletion): Record<string, number> {
  return {
    prompt_tokens: completion.promptTokens,
    completion_tokens: completion.completionTokens,
    total_tokens: completion.promptTokens + completion.completionTokens,
  };
}

/** A non-streaming `chat.completion` object. */
export function completionBody(meta: CompletionMeta, completion: SimCompletion): Record<string, unknown> {
  const message: Record<string, unknown> = { role: 'assistant', content: completion.content };
  if (completion.toolCall !== undefined) {
    message['tool_calls'] = [
      {
        id: toolCallId(),
        type: 'function',
        function: { name: completion.toolCall.name, arguments: completion.toolCall.arguments },
      },
    ];
  }
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: completion.finishReason }],
    usage: usageOf(completion),
  };
}

/** One `chat.completion.chunk`; with include_usage OpenAI sends `usage: null` on every content chunk. */
export function chunkBody(
  meta: CompletionMeta,
  delta: Record<string, unknown>,
  finishReason: SimFinishReason | null,
  includeUsage: boolean,
): Record<string, unknown> {
  const chunk: Record<string, unknown> = {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
  if (includeUsage) chunk['usage'] = null;
  return chunk;
}

/** The trailing usage chunk of `stream_options.include_usage`: empty `choices`, filled `usage`. */
export function usageChunkBody(meta: CompletionMeta, completion: SimCompletion): Record<string, unknown> {
  return {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [],
    usage: usageOf(completion),
  };
}

/**
 * The deltas of a streamed answer, after the role chunk: text in groups of `chunkTokens`
 * words (every group but the first starts with the space that joins it, so the deltas
 * concatenate to the exact text), or a tool call as a header delta then argument pieces.
 */
export function contentDeltas(completion: SimCompletion, chunkTokens: number): Record<string, unknown>[] {
  if (completion.toolCall !== undefined) {
    const { name, arguments: args } = completion.toolCall;
    const deltas: Record<string, unknown>[] = [
      { tool_calls: [{ index: 0, id: toolCallId(), type: 'function', function: { name, arguments: '' } }] },
    ];
    const size = chunkTokens * 4;
    for (let offset = 0; offset < args.length; offset += size) {
      deltas.push({ tool_calls: [{ index: 0, function: { arguments: args.slice(offset, offset + size) } }] });
    }
    return deltas;
  }
  const words = (completion.content ?? '').split(' ').filter((word) => word.length > 0);
  const deltas: Record<string, unknown>[] = [];
  for (let index = 0; index < words.length; index += chunkTokens) {
    const piece = words.slice(index, index + chunkTokens).join(' ');
    deltas.push({ content: index === 0 ? piece : ` ${piece}` });
  }
  return deltas;
}

/** Tokens carried by each delta, for pacing the stream. */
export function deltaTokens(completion: SimCompletion, deltaCount: number, chunkTokens: number): number {
  if (completion.toolCall !== undefined) return Math.max(1, Math.ceil(completion.completionTokens / Math.max(1, deltaCount)));
  return chunkTokens;
}
