export const CircuitState = { closed: 'closed', open: 'open', halfOpen: 'half_open' } as const;
export type CircuitState = (typeof CircuitState)[keyof typeof CircuitState];

export interface CircuitOptions {
  failureRate: number;
  window: number;
  openMs: number;
}

/**
 * Per arm and instance: opens when the share of failed calls among the last `window` reaches
 * `failureRate`, sheds while open, then lets one probe through; a good probe closes it.
 */
export class CircuitBreaker {
  readonly #options: CircuitOptions;
  readonly #results: boolean[] = [];
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
    this.#results.push(ok);
    if (this.#results.length > this.#options.window) this.#results.shift();
    const failures = this.#results.filter((result) => !result).length;
    if (this.#state === CircuitState.closed && this.#results.length >= this.#options.window && failures / this.#results.length >= this.#options.failureRate) {
      this.#state = CircuitState.open;
      this.#openedAt = now;
    }
  }
}
