import type { SimFault } from './faults.js';

/** Arrivals of one wall-clock second. */
export interface SimArrivalSecond {
  /** Unix time in whole seconds. */
  readonly second: number;
  readonly count: number;
}

/**
 * Counters of the chat completion route, as seen AT the simulated model: what a benchmark
 * reads to check the rate and concurrency the shadow pipeline really delivered. Health
 * checks, `/v1/models` and 404s are only counted in `otherRequests`.
 */
export interface SimStats {
  /** Chat completion requests received (any outcome). */
  readonly requestsTotal: number;
  /** Chat completion requests received and not yet finished or abandoned. */
  readonly inFlight: number;
  /** Highest `inFlight` seen since start (or `resetStats`). */
  readonly maxInFlight: number;
  /** Finished or abandoned requests by HTTP status sent ("200", "429"…); never-answered ones are not here. */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Requests whose connection closed before the response was complete (client gone, timeout fault, reset). */
  readonly aborted: number;
  /** Injected faults, forced or random. */
  readonly faults: Readonly<Partial<Record<SimFault, number>>>;
  /** Completion tokens of the answers planned (including cut ones). */
  readonly completionTokens: number;
  /** Requests to other routes. */
  readonly otherRequests: number;
  /** Arrivals per second over the last `windowSeconds` seconds, oldest first, current second last, zero-filled. */
  readonly arrivals: readonly SimArrivalSecond[];
  readonly windowSeconds: number;
}

/** Mutable counters behind {@link SimStats}. */
export class SimStatsCollector {
  private requestsTotal = 0;
  private inFlight = 0;
  private maxInFlight = 0;
  private byStatus = new Map<string, number>();
  private aborted = 0;
  private faults = new Map<SimFault, number>();
  private completionTokens = 0;
  private otherRequests = 0;
  private arrivalsBySecond = new Map<number, number>();

  constructor(
    private readonly windowSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  begin(): void {
    this.requestsTotal += 1;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const second = Math.floor(this.now() / 1000);
    this.arrivalsBySecond.set(second, (this.arrivalsBySecond.get(second) ?? 0) + 1);
    this.prune(second);
  }

  /** `status` is undefined when no status line was sent. */
  end(status: number | undefined, aborted: boolean): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (status !== undefined) this.byStatus.set(String(status), (this.byStatus.get(String(status)) ?? 0) + 1);
    if (aborted) this.aborted += 1;
  }

  fault(fault: SimFault): void {
    this.faults.set(fault, (this.faults.get(fault) ?? 0) + 1);
  }

  tokens(count: number): void {
    this.completionTokens += count;
  }

  other(): void {
    this.otherRequests += 1;
  }

  /** Zeroes every counter except `inFlight`, which is a level, not a count; `maxInFlight` restarts from it. */
  reset(): void {
    this.requestsTotal = 0;
    this.maxInFlight = this.inFlight;
    this.byStatus.clear();
    this.aborted = 0;
    this.faults.clear();
    this.completionTokens = 0;
    this.otherRequests = 0;
    this.arrivalsBySecond.clear();
  }

  snapshot(): SimStats {
    const current = Math.floor(this.now() / 1000);
    this.prune(current);
    const arrivals: SimArrivalSecond[] = [];
    for (let second = current - this.windowSeconds + 1; second <= current; second += 1) {
      arrivals.push({ second, count: this.arrivalsBySecond.get(second) ?? 0 });
    }
    return {
      requestsTotal: this.requestsTotal,
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      byStatus: Object.fromEntries(this.byStatus),
      aborted: this.aborted,
      faults: Object.fromEntries(this.faults),
      completionTokens: this.completionTokens,
      otherRequests: this.otherRequests,
      arrivals,
      windowSeconds: this.windowSeconds,
    };
  }

  private prune(current: number): void {
    for (const second of this.arrivalsBySecond.keys()) {
      if (second <= current - this.windowSeconds) this.arrivalsBySecond.delete(second);
    }
  }
}
