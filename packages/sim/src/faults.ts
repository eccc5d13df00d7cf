import type { SimProfile } from './profile.js';
import type { RandomSource } from './random.js';

/** Faults the simulator can inject into a chat completion. */
export const SimFault = {
  /** 500 with an OpenAI `server_error` body. */
  Error: 'error',
  /** 429 with `Retry-After` and an OpenAI rate-limit body. */
  RateLimit: 'rate_limit',
  /** The request is accepted and never answered, until the client leaves or the server closes. */
  Timeout: 'timeout',
  /** The answer stops half-way: no finish_reason / `[DONE]` (stream), JSON cut short (non-stream). */
  Truncate: 'truncate',
  /** 200 whose body (non-stream) or one SSE data line (stream) is not valid JSON. */
  Malformed: 'malformed',
  /**
   * Headers (and, streaming, an empty role chunk) at once, then no token ever: only SSE comments
   * keep the connection busy, as a proxy's keep-alive does, until the client leaves.
   */
  Stall: 'stall',
} as const;
export type SimFault = (typeof SimFault)[keyof typeof SimFault];

/** Header that forces a fault (or, with `none`, forbids one) for a single request. */
export const SIM_FAULT_HEADER = 'x-sim-fault';
/** Value of {@link SIM_FAULT_HEADER} that disables random faults for the request. */
export const SIM_FAULT_NONE = 'none';

const faultRates = [
  [SimFault.Error, 'errorRate'],
  [SimFault.RateLimit, 'rateLimitRate'],
  [SimFault.Timeout, 'timeoutRate'],
  [SimFault.Truncate, 'truncateRate'],
  [SimFault.Malformed, 'malformedRate'],
  [SimFault.Stall, 'stallRate'],
] as const satisfies readonly (readonly [SimFault, keyof SimProfile])[];

/** Every fault, in the order their rates are stacked. */
export const simFaults: readonly SimFault[] = faultRates.map(([fault]) => fault);

/**
 * Draws at most one fault: a single uniform number falls into the stacked rates
 * (error, rate_limit, timeout, truncate, malformed, stall), so each happens at exactly its rate.
 */
export function drawFault(profile: SimProfile, random: RandomSource): SimFault | undefined {
  const u = random();
  let threshold = 0;
  for (const [fault, key] of faultRates) {
    threshold += profile[key];
    if (u < threshold) return fault;
  }
  return undefined;
}

/** Reads the forcing header: a fault, `none`, absent (`undefined`), or an invalid value (`false`). */
export function parseFaultHeader(value: string | string[] | undefined): SimFault | typeof SIM_FAULT_NONE | undefined | false {
  if (value === undefined) return undefined;
  const text = (Array.isArray(value) ? value.join(',') : value).trim().toLowerCase();
  if (text === SIM_FAULT_NONE) return SIM_FAULT_NONE;
  return (simFaults as readonly string[]).includes(text) ? (text as SimFault) : false;
}
