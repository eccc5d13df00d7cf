/**
 * Closed list of error codes thrown by the sim package. HTTP-level failures the
 * simulated model *answers* with (400, 429, 500…) are responses, not thrown errors.
 */
export const SimErrorCode = {
  /** A profile or profile patch failed validation; the message names the field path. */
  InvalidProfile: 'SIM_INVALID_PROFILE',
  /** `resolveProfile` was given a name that is not in `profiles`. */
  UnknownProfile: 'SIM_UNKNOWN_PROFILE',
  /** Command-line arguments for `shadow-replay sim` could not be parsed. */
  InvalidArgs: 'SIM_INVALID_ARGS',
  /** The HTTP server could not listen (port in use, bad host…). */
  ListenFailed: 'SIM_LISTEN_FAILED',
  /** `start()` was called on a server that is closing or closed. */
  Closed: 'SIM_CLOSED',
} as const;

export type SimErrorCode = (typeof SimErrorCode)[keyof typeof SimErrorCode];

// Only a failed listen can succeed on a later attempt (e.g. a port freed by a previous run).
const retryableCodes: ReadonlySet<SimErrorCode> = new Set([SimErrorCode.ListenFailed]);

/** One validation problem, with the dotted path of the offending field. */
export interface SimIssue {
  readonly path: string;
  readonly message: string;
}

/** Error thrown by the sim package; `code` is one of {@link SimErrorCode}. */
export class SimError extends Error {
  override readonly name = 'SimError';
  readonly code: SimErrorCode;
  readonly retryable: boolean;
  override readonly cause: unknown;
  /** Validation problems, for `SIM_INVALID_PROFILE` and `SIM_INVALID_ARGS`. */
  readonly issues: readonly SimIssue[];

  constructor(
    code: SimErrorCode,
    message: string,
    options: { cause?: unknown; issues?: readonly SimIssue[] } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryable = retryableCodes.has(code);
    this.cause = options.cause;
    this.issues = options.issues ?? [];
  }
}

/** Narrowing helper that also checks the code when one is given. */
export function isSimError(value: unknown, code?: SimErrorCode): value is SimError {
  return value instanceof SimError && (code === undefined || value.code === code);
}
