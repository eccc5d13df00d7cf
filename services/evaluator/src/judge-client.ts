import { createHash } from 'node:crypto';
import { ShadowError, type ExperimentConfig, type PairJob } from '@shadow-replay/contracts';
import { DEFAULT_RUBRIC, JudgeVerdict, answerText, combineVerdicts, judgePrompt, judgePromptHash, lastUserTurn, parseVerdict, type Winner } from '@shadow-replay/evaluation';
import { RateLimiter, callChatCompletion, type ChatCallResult } from '@shadow-replay/platform';
import type { Redis } from 'ioredis';
import { Agent } from 'undici';

type JudgeConfig = NonNullable<ExperimentConfig['judge']>;

/** One judge call, as recorded in the EvaluationRecord. */
export interface JudgeCall {
  order: 'stable_first' | 'candidate_first';
  winner: Winner | null;
  reason: string | null;
  /** Kept when the answer could not be read as a verdict. */
  raw: string | null;
  promptTokens: number;
  completionTokens: number;
}

/** The `judge` field of an EvaluationRecord. */
export interface JudgeResult {
  verdict: JudgeVerdict;
  model: string;
  calls: JudgeCall[];
  tokens: number;
  costUsd: number | null;
  error?: string;
}

/** A judge call failed in a way a later attempt may not (the job is retried). */
export class JudgeUnavailableError extends ShadowError {
  constructor(message: string) {
    super('EVALUATOR_JUDGE_UNAVAILABLE', message, { retryable: true });
    this.name = 'JudgeUnavailableError';
  }
}

/**
 * Pairwise, blinded, position-swapped LLM-as-judge against an OpenAI-compatible endpoint
 * (DESIGN §4): identical answers are tied without a call; otherwise the judge is asked twice,
 * with the order swapped, and a side wins only when both orders agree.
 */
export class JudgeClient {
  readonly #config: JudgeConfig;
  readonly #apiKey: string | undefined;
  readonly #limiter: RateLimiter;
  readonly #agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
  readonly #rubric: string;
  readonly promptHash: string;

  constructor(options: { config: JudgeConfig; apiKey: string | undefined; redis: Redis; keyPrefix: string; experimentId: string }) {
    this.#config = options.config;
    this.#apiKey = options.apiKey;
    this.#rubric = options.config.rubric ?? DEFAULT_RUBRIC;
    this.promptHash = judgePromptHash(this.#rubric, options.config.model);
    this.#limiter = new RateLimiter({
      redis: options.redis,
      key: `${options.keyPrefix}:judge:{${options.experimentId}}`,
      limits: { rps: options.config.rate.rps, concurrency: options.config.rate.concurrency },
    });
  }

  /**
   * Judges one pair whose sides both answered. `lastAttempt`: a judge that is still unreachable
   * gives verdict `error` instead of failing the pair's evaluation.
   */
  async judge(pair: PairJob, lastAttempt: boolean): Promise<JudgeResult> {
    const stable = answerText(pair.stable);
    const candidate = answerText(pair.candidate);
    const base = { model: this.#config.model, calls: [], tokens: 0, costUsd: this.#config.prices ? 0 : null };
    if (stable === candidate) return { ...base, verdict: JudgeVerdict.autoTie };
    if (sampleFraction(pair.requestId) >= this.#config.sampleRate) return { ...base, verdict: JudgeVerdict.notSampled };
    const question = lastUserTurn(pair.request?.messages ?? pair.candidate.request?.messages ?? []);
    try {
      const [first, second] = await Promise.all([this.#ask(question, stable, candidate, 'stable_first'), this.#ask(question, candidate, stable, 'candidate_first')]);
      const calls = [first, second];
      const tokens = calls.reduce((sum, call) => sum + call.promptTokens + call.completionTokens, 0);
      const prices = this.#config.prices;
      const costUsd = prices === undefined ? null : calls.reduce((sum, call) => sum + (call.promptTokens * prices.inputPerMillion + call.completionTokens * prices.outputPerMillion) / 1_000_000, 0);
      const verdict = first.winner === null || second.winner === null ? JudgeVerdict.parseError : combineVerdicts(first.winner, second.winner);
      return { verdict, model: this.#config.model, calls, tokens, costUsd };
    } catch (error) {
      if (!lastAttempt || !(error instanceof JudgeUnavailableError)) throw error;
      return { ...base, verdict: JudgeVerdict.error, error: error.message };
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }

  async #ask(question: string, a: string, b: string, order: JudgeCall['order']): Promise<JudgeCall> {
    const release = await this.#limiter.acquire(1);
    let result: ChatCallResult;
    try {
      result = await callChatCompletion({
        dispatcher: this.#agent,
        url: `${this.#config.baseUrl.replace(/\/$/, '')}/v1/chat/completions`,
        body: { model: this.#config.model, temperature: 0, response_format: { type: 'json_object' }, messages: [{ role: 'user', content: judgePrompt(this.#rubric, question, a, b) }] },
        headers: this.#apiKey === undefined ? {} : { authorization: `Bearer ${this.#apiKey}` },
        totalMs: this.#config.timeouts.totalMs,
        firstTokenMs: this.#config.timeouts.totalMs,
      });
    } finally {
      await release();
    }
    if (result.outcome !== 'ok') throw new JudgeUnavailableError(`judge call failed: ${result.error?.code ?? 'error'}: ${result.error?.message ?? ''}`);
    const text = result.response?.choices[0]?.content ?? '';
    const parsed = parseVerdict(text);
    return {
      order,
      winner: parsed.ok ? parsed.winner : null,
      reason: parsed.ok ? parsed.reason : null,
      raw: parsed.ok ? null : parsed.raw,
      promptTokens: result.usage?.prompt ?? 0,
      completionTokens: result.usage?.completion ?? 0,
    };
  }
}

function sampleFraction(requestId: string): number {
  return createHash('sha256').update(`judge\u0000${requestId}`).digest().readUInt32BE(0) / 0x1_0000_0000;
}
