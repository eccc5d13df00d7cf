import { ShadowError } from '@shadow-replay/contracts';

/** Error codes of the evaluation package. Every one is a caller bug or bad input: none is retryable. */
export const EvaluationErrorCode = {
  invalidQuantile: 'EVAL_INVALID_QUANTILE',
  invalidSample: 'EVAL_INVALID_SAMPLE',
  invalidPrices: 'EVAL_INVALID_PRICES',
  pairMismatch: 'EVAL_PAIR_MISMATCH',
  invalidInput: 'EVAL_INVALID_INPUT',
  invalidOptions: 'EVAL_INVALID_OPTIONS',
} as const;
export type EvaluationErrorCode = (typeof EvaluationErrorCode)[keyof typeof EvaluationErrorCode];

/** An error raised by the evaluation package; `code` is one of {@link EvaluationErrorCode}. */
export class EvaluationError extends ShadowError {
  declare readonly code: EvaluationErrorCode;

  constructor(code: EvaluationErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'EvaluationError';
  }
}
