import { ShadowError } from '@shadow-replay/contracts';

/** Error codes of the shared plumbing. */
export const PlatformErrorCode = {
  configInvalid: 'PLATFORM_CONFIG_INVALID',
  configUnreadable: 'PLATFORM_CONFIG_UNREADABLE',
  bodyTooLarge: 'PLATFORM_BODY_TOO_LARGE',
  upstreamConnect: 'PLATFORM_UPSTREAM_CONNECT',
  upstreamTimeout: 'PLATFORM_UPSTREAM_TIMEOUT',
  upstreamStatus: 'PLATFORM_UPSTREAM_STATUS',
  upstreamMalformed: 'PLATFORM_UPSTREAM_MALFORMED',
  upstreamTruncated: 'PLATFORM_UPSTREAM_TRUNCATED',
  kafkaPublish: 'PLATFORM_KAFKA_PUBLISH',
  /** An outcome window that does not run between minute boundaries. */
  outcomeWindowInvalid: 'PLATFORM_OUTCOME_WINDOW_INVALID',
  /** A request's minute kept changing under a settle (retryable: the record is redone). */
  outcomeMinuteContended: 'PLATFORM_OUTCOME_MINUTE_CONTENDED',
} as const;
export type PlatformErrorCode = (typeof PlatformErrorCode)[keyof typeof PlatformErrorCode];

export class PlatformError extends ShadowError {
  constructor(code: PlatformErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'PlatformError';
  }
}
