export const CircuitState = { closed: 'closed', open: 'open', halfOpen: 'half_open' } as const;
export type CircuitState = (typeof CircuitState)[keyof typeof CircuitState];

export interface CircuitOptions {
  failureRate: number;
  /** The fewest calls in the time window before the rate can open the circuit. */
  window: number;
  /** Calls are counted over this much time. @defaultValue 30000 */
  windowMs?: number;
  openMs: number;
}

/**
 * Per arm and instance: opens when, over the last `windowMs`, at least `window` calls were made
 * and the share that failed reaches `failureRate`; sheds while open, then lets one probe
 * through; a good probe closes it. A time window, not the last N calls: at the end of a burst the
 * slow failures (timeouts, retried errors) finish last and would otherwise look like an outage.
 */
export class CircuitBreaker {
  readonly #options: CircuitOptions;
  readonly #results: Array<{ at: number; ok: boolean }> = [];
  #state: CircuitState = CircuitState.closed;
  #openedAt = 0;
  #probing = false;

  constructor(options: CircuitOptions) {
    this.#options = options;
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** True when a call may go out now. */
  allow(now = Date.now()): boolean {
    if (this.#state === CircuitState.closed) return true;
    if (this.#state === CircuitState.open && now - this.#openedAt >= this.#options.openMs) this.#state = CircuitState.halfOpen;
    if (this.#state === CircuitState.halfOpen && !this.#probing) {
      this.#probing = true;
      return true;
    }
    return false;
  }

  record(ok: boolean, now = Date.now()): void {
    if (this.#state === CircuitState.halfOpen && this.#probing) {
      this.#probing = false;
      if (ok) {
        this.#state = CircuitState.closed;
        this.#results.length = 0;
      } else {
        this.#state = CircuitState.open;
        this.#openedAt = now;
      }
      return;
    }
    this.#results.push({ at: now, ok });
    const since = now - (this.#options.windowMs ?? 30_000);
    while (this.#results.length > 0 && (this.#results[0]?.at ?? now) < since) this.#results.shift();
    const failures = this.#results.filter((result) => !result.ok).length;
    if (this.#state === CircuitState.closed && this.#results.length >= this.#options.window && failures / this.#results.length >= this.#options.failureRate) {
      this.#state = CircuitState.open;
      this.#openedAt = now;
    }
  }
}
