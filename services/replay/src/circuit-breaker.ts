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
  // A queue with a head index and running counts: record() stays O(1) at any call rate.
  #results: Array<{ at: number; ok: boolean }> = [];
  #head = 0;
  #failures = 0;
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
        this.#results = [];
        this.#head = 0;
        this.#failures = 0;
      } else {
        this.#state = CircuitState.open;
        this.#openedAt = now;
      }
      return;
    }
    this.#results.push({ at: now, ok });
    if (!ok) this.#failures++;
    const since = now - (this.#options.windowMs ?? 30_000);
    for (let oldest = this.#results[this.#head]; oldest !== undefined && oldest.at < since; oldest = this.#results[this.#head]) {
      if (!oldest.ok) this.#failures--;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#results.length) {
      this.#results = this.#results.slice(this.#head);
      this.#head = 0;
    }
    const count = this.#results.length - this.#head;
    const failures = this.#failures;
    if (this.#state === CircuitState.closed && count >= this.#options.window && failures / count >= this.#options.failureRate) {
      this.#state = CircuitState.open;
      this.#openedAt = now;
    }
  }
}
