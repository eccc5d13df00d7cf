interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Awaited writes of many concurrent callers, coalesced: items added in one turn of the event
 * loop (or `maxBatch` of them) go out in one `write`. Each caller's promise settles with its own
 * item's batch, so "offset committed only after the write" still holds per record; a stage with
 * 64 records in flight makes one produce request or one `addBulk`, not 64. A failed write fails
 * every item of its batch (their records are redone; the sinks are idempotent).
 */
export class TickBatcher<T> {
  readonly #write: (items: T[]) => Promise<unknown>;
  readonly #maxBatch: number;
  #waiting: Waiting<T>[] = [];
  #scheduled = false;

  constructor(write: (items: T[]) => Promise<unknown>, maxBatch = 500) {
    this.#write = write;
    this.#maxBatch = maxBatch;
  }

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (this.#waiting.length >= this.#maxBatch) {
        this.#flush();
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        // After the current I/O callbacks: the work finishing together joins one write.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#waiting;
    if (batch.length === 0) return;
    this.#waiting = [];
    this.#write(batch.map((entry) => entry.item)).then(
      () => {
        for (const entry of batch) entry.resolve();
      },
      (error: unknown) => {
        for (const entry of batch) entry.reject(error);
      },
    );
  }
}
