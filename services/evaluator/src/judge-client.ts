import { createHash } from 'node:crypto';
import { ShadowError, type ExperimentConfig, type PairJob } from '@shadow-replay/contracts';
import { DEFAULT_RUBRIC, JudgeVerdict, answerText, combineVerdicts, judgePrompt, judgePromptHash, lastUserTurn, parseVerdict, type Winner } from '@shadow-replay/evaluation';
import { RateLimiter, callChatCompletion, callRetryDelayMs, isRetryableCall, sleep, type ChatCallResult } from '@shadow-replay/platform';
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
  /** HTTP requests this call took: 1, plus one per retry of a transient failure. */
  attempts: number;
}

/** The `judge` field of an EvaluationRecord. */
export interface JudgeResult {
  verdict: JudgeVerdict;
  model: string;
  calls: JudgeCall[];
  tokens: number;
  costUsd: number | null;
}

/**
 * The judge gave no answer, even after retrying transient failures: this run of the pair's
 * evaluation fails, and `evaluator.attempts` decides whether it runs again.
 */
export class JudgeUnavailableError extends ShadowError {
  /** The judge's last Retry-After, when it sent one: the next run must not come sooner. */
  readonly retryAfterMs: number | null;

  constructor(message: string, retryAfterMs: number | null) {
    // The code leads the message: it becomes the job's failedReason and the failure metric's label.
    super('EVALUATOR_JUDGE_UNAVAILABLE', `EVALUATOR_JUDGE_UNAVAILABLE: ${message}`, { retryable: true });
    this.name = 'JudgeUnavailableError';
    this.retryAfterMs = retryAfterMs;
  }
}

/** What a judge client reports of each HTTP request it makes, for the evaluator's metrics. */
export type JudgeAttemptOutcome = 'ok' | 'retried' | 'failed';

export interface JudgeClientOptions {
  config: JudgeConfig;
  apiKey: string | undefined;
  redis: Redis;
  keyPrefix: string;
  experimentId: string;
  /** Called once per HTTP request to the judge. @defaultValue none */
  onAttempt?: (outcome: JudgeAttemptOutcome) => void;
}

/**
 * Pairwise, blinded, position-swapped LLM-as-judge against an OpenAI-compatible endpoint
 * (DESIGN §4): identical answers are tied without a call; otherwise the judge is asked twice,
 * with the order swapped, and a side wins only when both orders agree.
 *
 * Each call retries transient failures (connection errors, 5xx, 429) up to
 * `judge.retry.attempts` calls, waiting the judge's Retry-After when it sent one and a
 * full-jitter exponential backoff otherwise; a call that still fails makes the pair's run fail
 * with {@link JudgeUnavailableError}.
 */
export class JudgeClient {
  readonly #config: JudgeConfig;
  readonly #apiKey: string | undefined;
  readonly #experimentId: string;
  readonly #limiter: RateLimiter;
  readonly #agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
  readonly #rubric: string;
  readonly #onAttempt: (outcome: JudgeAttemptOutcome) => void;
  readonly promptHash: string;

  constructor(options: JudgeClientOptions) {
    this.#config = options.config;
    this.#apiKey = options.apiKey;
    this.#experimentId = options.experimentId;
    this.#rubric = options.config.rubric ?? DEFAULT_RUBRIC;
    this.#onAttempt = options.onAttempt ?? (() => undefined);
    this.promptHash = judgePromptHash(this.#rubric, options.config.model);
    this.#limiter = new RateLimiter({
      redis: options.redis,
      key: `${options.keyPrefix}:judge:{${options.experimentId}}`,
      limits: { rps: options.config.rate.rps, concurrency: options.config.rate.concurrency },
    });
  }

  /**
   * Judges one pair whose sides both answered.
   * @throws {@link JudgeUnavailableError} when a call still fails after its retries.
   */
  async judge(pair: PairJob): Promise<JudgeResult> {
    const stable = answerText(pair.stable);
    const candidate = answerText(pair.candidate);
    const base = { model: this.#config.model, calls: [], tokens: 0, costUsd: this.#config.prices ? 0 : null };
    if (stable === candidate) return { ...base, verdict: JudgeVerdict.autoTie };
    if (sampleFraction(pair.requestId) >= this.#config.sampleRate) return { ...base, verdict: JudgeVerdict.notSampled };
    const question = lastUserTurn(pair.request?.messages ?? pair.candidate.request?.messages ?? []);
    // Settled, not raced: a failing order must not leave the other retrying after the run has failed.
    const settled = await Promise.allSettled([
      this.#ask(pair.requestId, question, stable, candidate, 'stable_first'),
      this.#ask(pair.requestId, question, candidate, stable, 'candidate_first'),
    ]);
    const calls: JudgeCall[] = [];
    for (const result of settled) {
      if (result.status === 'rejected') throw result.reason;
      calls.push(result.value);
    }
    const [first, second] = calls as [JudgeCall, JudgeCall];
    const tokens = calls.reduce((sum, call) => sum + call.promptTokens + call.completionTokens, 0);
    const prices = this.#config.prices;
    const costUsd = prices === undefined ? null : calls.reduce((sum, call) => sum + (call.promptTokens * prices.inputPerMillion + call.completionTokens * prices.outputPerMillion) / 1_000_000, 0);
    const verdict = first.winner === null || second.winner === null ? JudgeVerdict.parseError : combineVerdicts(first.winner, second.winner);
    return { verdict, model: this.#config.model, calls, tokens, costUsd };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }

  async #ask(requestId: string, question: string, a: string, b: string, order: JudgeCall['order']): Promise<JudgeCall> {
    const retry = this.#config.retry;
    for (let attempt = 1; ; attempt++) {
      const result = await this.#call(requestId, question, a, b, order);
      if (result.outcome === 'ok') {
        this.#onAttempt('ok');
        return verdictCall(result, order, attempt);
      }
      const delay = callRetryDelayMs(attempt, retry, result.retryAfterMs);
      if (attempt >= retry.attempts || !isRetryableCall(result) || delay === null) {
        this.#onAttempt('failed');
        const why = delay === null ? `; it asked to wait ${result.retryAfterMs ?? 0} ms, over judge.retry.maxDelayMs (${retry.maxDelayMs})` : '';
        throw new JudgeUnavailableError(`the ${order} call failed after ${attempt} attempt(s): ${result.error?.code ?? 'error'}: ${result.error?.message ?? ''}${why}`, result.retryAfterMs);
      }
      this.#onAttempt('retried');
      await sleep(delay);
    }
  }

  async #call(requestId: string, question: string, a: string, b: string, order: JudgeCall['order']): Promise<ChatCallResult> {
    // A slot per HTTP request, not per call: a call waiting to retry holds none.
    const release = await this.#limiter.acquire(1);
    try {
      return await callChatCompletion({
        dispatcher: this.#agent,
        url: `${this.#config.baseUrl.replace(/\/$/, '')}/v1/chat/completions`,
        body: { model: this.#config.model, temperature: 0, response_format: { type: 'json_object' }, messages: [{ role: 'user', content: judgePrompt(this.#rubric, question, a, b) }] },
        headers: {
          ...(this.#apiKey === undefined ? {} : { authorization: `Bearer ${this.#apiKey}` }),
          // Lets the judge's operator (and a test) tell the calls and their retries apart; the answers stay blinded.
          'x-shadow-experiment': this.#experimentId,
          'x-shadow-request-id': requestId,
          'x-shadow-judge-order': order,
        },
        totalMs: this.#config.timeouts.totalMs,
        firstTokenMs: this.#config.timeouts.totalMs,
      });
    } finally {
      await release();
    }
  }
}

function verdictCall(result: ChatCallResult, order: JudgeCall['order'], attempts: number): JudgeCall {
  const parsed = parseVerdict(result.response?.choices[0]?.content ?? '');
  return {
    order,
    winner: parsed.ok ? parsed.winner : null,
    reason: parsed.ok ? parsed.reason : null,
    raw: parsed.ok ? null : parsed.raw,
    promptTokens: result.usage?.prompt ?? 0,
    completionTokens: result.usage?.completion ?? 0,
    attempts,
  };
}

function sampleFraction(requestId: string): number {
  return createHash('sha256').update(`judge\u0000${requestId}`).digest().readUInt32BE(0) / 0x1_0000_0000;
}
