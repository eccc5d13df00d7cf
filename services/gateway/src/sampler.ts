import { createHash } from 'node:crypto';
import type { SamplingDecision } from '@shadow-replay/contracts';

export interface SamplerConfig {
  rate: number;
  keyHeader?: string | undefined;
  salt: string;
  routes: string[];
  models?: string[] | undefined;
  optOutHeader: string;
}

export interface SampleInput {
  requestId: string;
  route: string;
  headers: Record<string, string | string[] | undefined>;
}

export const SkipReason = { route: 'route', model: 'model', optOut: 'opt_out', sampledOut: 'sampled_out' } as const;
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason];

export type SampleResult = { publish: true; decision: SamplingDecision } | { publish: false; reason: Exclude<SkipReason, 'model'> };

/**
 * Decides which requests are published. The decision is a salted hash of the request id, or of
 * a header value (tenant, user, conversation) so that all requests sharing it are decided alike.
 * The rate can change at runtime; the salt keeps the decision stable across restarts.
 *
 * `decide` needs only the route and the headers, so the live path makes it before it keeps
 * anything of the exchange: a request sampled out costs a hash. The model filter needs the
 * parsed body and is applied by the publisher thread (`acceptsModel`).
 */
export class Sampler {
  readonly #config: SamplerConfig;
  #rate: number;

  constructor(config: SamplerConfig) {
    this.#config = config;
    this.#rate = config.rate;
  }

  get rate(): number {
    return this.#rate;
  }

  setRate(rate: number): void {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`sampling rate must be between 0 and 1 (got ${rate})`);
    this.#rate = rate;
  }

  decide(input: SampleInput): SampleResult {
    if (!this.#config.routes.includes(input.route)) return { publish: false, reason: SkipReason.route };
    const optOut = first(input.headers[this.#config.optOutHeader]);
    if (optOut !== undefined && optOut !== '0' && optOut.toLowerCase() !== 'false') return { publish: false, reason: SkipReason.optOut };
    const header = this.#config.keyHeader;
    const keyValue = header === undefined ? undefined : first(input.headers[header]);
    const key = keyValue === undefined || keyValue.length === 0 ? null : `header:${header}`;
    if (samplingFraction(this.#config.salt, keyValue || input.requestId) >= this.#rate) return { publish: false, reason: SkipReason.sampledOut };
    return { publish: true, decision: { rate: this.#rate, key, sampled: true } };
  }

  /** False when `sampling.models` is set and does not name the request's model. */
  acceptsModel(model: string | undefined): boolean {
    return this.#config.models === undefined || this.#config.models.includes(model ?? '');
  }
}

/** Where a key falls in [0, 1): the same key and salt always give the same fraction. */
export function samplingFraction(salt: string, key: string): number {
  return createHash('sha256').update(salt).update('\u0000').update(key).digest().readUInt32BE(0) / 0x1_0000_0000;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
