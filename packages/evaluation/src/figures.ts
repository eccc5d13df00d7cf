import type { ResponseEvent, SideFigures } from '@shadow-replay/contracts';
import { EvaluationError, EvaluationErrorCode } from './errors.js';

/** Token prices of one endpoint, in USD per million tokens. */
export interface Prices {
  inputPerMillion: number;
  outputPerMillion: number;
}

/**
 * Latency (E2E, TTFT, TPOT, the inter-token-latency summary and output tokens/s, as the
 * response's timing measured them), tokens and cost of one side of a pair. Cost is
 * `(prompt × inputPerMillion + completion × outputPerMillion) / 1e6` USD (DESIGN §4), and null
 * when no prices are configured or the response carries no usage. Estimated usage is priced
 * like reported usage.
 *
 * @throws {@link EvaluationError} `EVAL_INVALID_PRICES` when a price is negative or not finite.
 */
export function sideFigures(event: ResponseEvent, prices?: Prices): SideFigures {
  const usage = event.usage;
  return {
    outcome: event.outcome,
    e2eMs: event.timing.e2eMs,
    ttftMs: event.timing.ttftMs,
    tpotMs: event.timing.tpotMs,
    itl: event.timing.itl,
    outputTokensPerSec: event.timing.outputTokensPerSec,
    promptTokens: usage?.prompt ?? null,
    completionTokens: usage?.completion ?? null,
    costUsd:
      prices === undefined || usage === null
        ? null
        : (usage.prompt * checkedPrice(prices.inputPerMillion, 'inputPerMillion') +
            usage.completion * checkedPrice(prices.outputPerMillion, 'outputPerMillion')) /
          1_000_000,
  };
}

function checkedPrice(value: number, field: string): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new EvaluationError(
      EvaluationErrorCode.invalidPrices,
      `prices.${field} must be a finite number >= 0 in USD per million tokens (got ${String(value)})`,
    );
  }
  return value;
}
