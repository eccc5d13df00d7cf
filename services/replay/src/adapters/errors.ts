import { ShadowError } from '@shadow-replay/contracts';

/** Error codes of the input adapters. Poison input is never an error: it is an `AdaptResult`. */
export const InputAdapterErrorCode = {
  /** The registry did not answer, answered 5xx, refused our credentials or timed out. */
  registryUnavailable: 'REPLAY_INPUT_REGISTRY_UNAVAILABLE',
  /** The registry answered in a way that points at our configuration (e.g. a 404 that is not "schema not found"). */
  registryMisconfigured: 'REPLAY_INPUT_REGISTRY_MISCONFIGURED',
} as const;
export type InputAdapterErrorCode = (typeof InputAdapterErrorCode)[keyof typeof InputAdapterErrorCode];

/**
 * An infrastructure failure while adapting a record. Always retryable: the record itself may be
 * fine, so it must be retried (the consumer redoes the batch), never dead-lettered.
 */
export class InputAdapterError extends ShadowError {
  constructor(code: InputAdapterErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { retryable: true, ...options });
    this.name = 'InputAdapterError';
  }
}

export function isInputAdapterError(error: unknown): error is InputAdapterError {
  return error instanceof InputAdapterError;
}
