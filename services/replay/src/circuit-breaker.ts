export const CircuitState = { closed: 'closed', open: 'open', halfOpen: 'half_open' } as const;
export type CircuitState = (typeof CircuitState)[keyof typeof CircuitState];

/** What {@link CircuitBreaker.allow} let through: an ordinary call, or the half-open circuit's single probe. */
export const CircuitPermit = { call: 'call', probe: 'probe' } as const;
export type CircuitPermit = (typeof CircuitPermit)[keyof typeof CircuitPermit];

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
 * Only the probe's own result decides the half-open circuit: calls that were in flight when it
 * opened may finish during the probe and are not taken for it.
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

  /** Whether a call may go out now, and as what; null while the circuit sheds. */
  allow(now = Date.now()): CircuitPermit | null {
    if (this.#state === CircuitState.closed) return CircuitPermit.call;
    if (this.#state === CircuitState.open && now - this.#openedAt >= this.#options.openMs) this.#state = CircuitState.halfOpen;
    if (this.#state === CircuitState.halfOpen && !this.#probing) {
      this.#probing = true;
      return CircuitPermit.probe;
    }
    return null;
  }

  /** The result of a call let through by {@link allow} with `permit`. */
  record(ok: boolean, now = Date.now(), permit: CircuitPermit = CircuitPermit.call): void {
    if (permit === CircuitPermit.probe) {
      if (!this.#probing) return;
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
    // Late results of calls made before the circuit opened: the probe decides now.
    if (this.#state !== CircuitState.closed) return;
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
    if (count >= this.#options.window && failures / count >= this.#options.failureRate) {
      this.#state = CircuitState.open;
      this.#openedAt = now;
    }
  }

  /**
   * The probe ended without a verdict on the candidate (its request failed on our side): the
   * next call probes instead, rather than the circuit waiting forever for a result.
   */
  abandonProbe(): void {
    this.#probing = false;
  }
}
