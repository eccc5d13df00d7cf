/** Error codes of the contracts package. */
export const ContractErrorCode = {
  invalidEvent: 'CONTRACTS_INVALID_EVENT',
} as const;
export type ContractErrorCode = (typeof ContractErrorCode)[keyof typeof ContractErrorCode];

/** Base of every shadow-replay error: a stable code and whether retrying can help. */
export class ShadowError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ShadowError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Codes are upper snake case with a package prefix, e.g. `REPLAY_CANDIDATE_TIMEOUT`. */
export const ERROR_CODE_FORMAT = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$/;
