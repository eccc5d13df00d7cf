import { answerSeed, answerWords, perturbOneWord } from './answer-text.js';
import { maxTokensOf, promptOf, promptTokensOf, type SimChatRequest } from './chat-request.js';
import { judgeVerdict } from './judge.js';
import type { SimProfile } from './profile.js';
import { seededRandom, type RandomSource } from './random.js';
import { splitWords } from './tokens.js';
import { planToolCall, toolCallTokens, type SimToolCallPlan } from './tool-call.js';

/** OpenAI finish reasons the simulator produces. */
export const SimFinishReason = {
  Stop: 'stop',
  Length: 'length',
  ToolCalls: 'tool_calls',
} as const;
export type SimFinishReason = (typeof SimFinishReason)[keyof typeof SimFinishReason];

/** What the simulated model answers to one request, before timing and faults. */
export interface SimCompletion {
  /** Answer text; `null` for a tool call. */
  readonly content: string | null;
  readonly toolCall?: SimToolCallPlan | undefined;
  readonly finishReason: SimFinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Seed that produced the answer (`seed` or `baseSeed`). */
  readonly seed: string;
  /** Whether the prompt is one of the profile's diverging prompts. */
  readonly diverged: boolean;
  /** Whether temperature noise changed a word. */
  readonly perturbed: boolean;
}

/**
 * Plans the answer to a request: a tool call when `planToolCall` decides so, a JSON
 * verdict for a judge profile asked for one, else vocabulary text. Text (verdicts
 * included) is cut to `max_completion_tokens ?? max_tokens` words with finish_reason
 * `length`. `random` only drives temperature noise; everything else is deterministic.
 * Without `random`, temperature noise draws from `Math.random`, unless the request carries
 * OpenAI's `seed` parameter: then from a stream seeded by (answer seed, prompt, temperature,
 * request seed), so the same request with the same seed samples the same answer, and another
 * seed or temperature samples independently, as a real model's reproducible sampling would.
 */
export function planCompletion(
  request: SimChatRequest,
  profile: SimProfile,
  random?: RandomSource,
): SimCompletion {
  const prompt = promptOf(request.messages);
  const { seed, diverged } = answerSeed(prompt, profile);
  const noise = random ?? samplingRandom(request, prompt, seed);
  const promptTokens = promptTokensOf(request.messages);

  const toolCall = planToolCall(request, prompt, seed, profile.toolCallRate);
  if (toolCall !== undefined) {
    return {
      content: null,
      toolCall,
      finishReason: SimFinishReason.ToolCalls,
      promptTokens,
      completionTokens: toolCallTokens(toolCall),
      seed,
      diverged,
      perturbed: false,
    };
  }

  const verdict = profile.judge === undefined ? undefined : judgeVerdict(prompt, seed, profile.judge);
  let words = verdict === undefined ? answerWords(prompt, seed, profile.outputTokens) : splitWords(JSON.stringify(verdict));
  const cap = maxTokensOf(request);
  const capped = cap !== undefined && words.length > cap;
  if (capped) words = words.slice(0, cap);

  // Noise stays out of verdicts: a changed word there would break the JSON, not model sampling.
  const perturbed =
    verdict === undefined && (request.temperature ?? 0) > 0 && noise() < profile.temperatureNoise;
  if (perturbed) words = perturbOneWord(words, noise);

  return {
    content: words.join(' '),
    finishReason: capped ? SimFinishReason.Length : SimFinishReason.Stop,
    promptTokens,
    completionTokens: words.length,
    seed,
    diverged,
    perturbed,
  };
}

function samplingRandom(request: SimChatRequest, prompt: string, answerSeed: string): RandomSource {
  const { seed } = request;
  if (seed === undefined || seed === null) return Math.random;
  return seededRandom('temperature-noise', answerSeed, prompt, String(request.temperature ?? 0), String(seed));
}
