/**
 * Per-arm pacing inside one replay instance: at most `concurrency` calls at once and, when
 * `rps` is set, starts spaced 1/rps apart (no bursts). Cross-instance limits held in Redis
 * build on this seam.
 */
export class RateLimiter {
  readonly #concurrency: number;
  readonly #intervalMs: number;
  #active = 0;
  #nextStartAt = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(options: { concurrency: number; rps?: number | undefined }) {
    this.#concurrency = options.concurrency;
    this.#intervalMs = options.rps === undefined ? 0 : 1000 / options.rps;
  }

  get active(): number {
    return this.#active;
  }

  /** Waits for a slot; call the returned function when the call is over. */
  async acquire(): Promise<() => void> {
    if (this.#active >= this.#concurrency) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active++;
    }
    if (this.#intervalMs > 0) {
      const now = performance.now();
      const startAt = Math.max(now, this.#nextStartAt);
      this.#nextStartAt = startAt + this.#intervalMs;
      if (startAt > now) await new Promise((resolve) => setTimeout(resolve, startAt - now));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    };
  }
}
