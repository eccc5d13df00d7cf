import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { Logger } from '@shadow-replay/platform';
import { captureSize, packExchange, type CaptureInput, type CapturedExchange, type CountsReport, type DropReason, type FromPublisher, type ToPublisher } from './capture.js';
import type { GatewaySettings } from './config.js';

export interface PublisherThreadOptions {
  settings: GatewaySettings;
  log: Logger;
  /** Counts reported by the thread since its previous report. */
  onCounts: (counts: CountsReport) => void;
}

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(`./publisher-worker${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);

/**
 * Built code runs dist/publisher-worker.js. Tests and benchmarks run the TypeScript sources
 * through tsx, whose `--import` hooks Node 20 does not apply to worker threads: the thread then
 * registers tsx itself before loading the entry.
 */
function spawnPublisher(options: WorkerOptions): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}
/** How long exchanges wait to be handed over together. */
const HANDOFF_BATCH_MS = 10;
/** How long close() waits beyond the flush deadline before it stops the thread. */
const CLOSE_GRACE_MS = 2_000;
/** How long a scrape waits for the thread's report; a starved thread leaves the last one in place. */
const SYNC_TIMEOUT_MS = 1_000;

/**
 * The live path's handle on the publisher thread. `offer` never waits: the exchanges of a few
 * milliseconds go over in one message, their buffers transferred. What was handed over and not
 * yet taken in by the thread is bounded (`gateway.handoff`): past the bound, an exchange is
 * dropped and counted `handoff_full` before anything of it is copied, so a starved thread cannot
 * make the live path's memory grow. If the thread dies, users are unaffected and what would have
 * been published is dropped and counted.
 */
export class PublisherThread {
  readonly #options: PublisherThreadOptions;
  #worker: Worker | undefined;
  #alive = false;
  #pending: CapturedExchange[] = [];
  #flushScheduled = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #syncId = 0;
  #offers = 0;
  #sync: { promise: Promise<void>; offers: number } | undefined;
  readonly #synced = new Map<number, () => void>();
  #closed: (() => void) | undefined;
  #depth = 0;
  #bufferBytes = 0;
  /** Exchanges posted to the thread, and those it reported taking in. */
  #posted = 0;
  #taken = 0;
  /** Exchanges accepted by `offer` (pending or posted) that the thread has not reported taking in, and their bytes. */
  #inFlight = 0;
  #inFlightBytes = 0;
  #closing = false;

  constructor(options: PublisherThreadOptions) {
    this.#options = options;
  }

  /** The thread itself, for supervision (and the test that kills it). */
  get worker(): Worker | undefined {
    return this.#worker;
  }

  /** Events waiting in the thread's buffer, as of its last report. */
  get depth(): number {
    return this.#depth;
  }

  /** Bytes of the events waiting in the thread's buffer, as of its last report. */
  get bufferBytes(): number {
    return this.#bufferBytes;
  }

  /** Exchanges handed over (or about to be) that the thread has not taken in yet, and their bytes. */
  get inFlight(): { exchanges: number; bytes: number } {
    return { exchanges: this.#inFlight, bytes: this.#inFlightBytes };
  }

  /** Starts the thread and waits until it runs; a thread that cannot start is logged, not fatal. */
  async start(): Promise<void> {
    // The key for the stable model stays on the live path.
    const settings: GatewaySettings = { ...this.#options.settings, stableApiKey: undefined };
    const worker = spawnPublisher({ workerData: { settings }, name: 'gateway-publisher' });
    this.#worker = worker;
    worker.unref();
    const ready = new Promise<void>((resolve) => {
      worker.on('message', (message: FromPublisher) => {
        if (message.type === 'ready') {
          this.#alive = true;
          resolve();
        } else this.#receive(message);
      });
      worker.on('error', (error) => {
        this.#options.log.error({ err: error }, 'publisher thread failed; events are dropped from now on');
        resolve();
      });
      worker.on('exit', () => {
        this.#alive = false;
        if (!this.#closing) this.#countLostInThread();
        this.#dropPending();
        for (const done of this.#synced.values()) done();
        this.#synced.clear();
        this.#closed?.();
        resolve();
      });
    });
    await ready;
  }

  /**
   * Hands one exchange over, packed into one buffer (one copy) when it fits in the hand-off
   * bound, else dropped and counted without a copy. Never waits.
   */
  offer(input: CaptureInput): void {
    if (!this.#alive) {
      this.#options.onCounts(dropCounts('publisher_failed', 2, this.#depth));
      return;
    }
    const size = captureSize(input);
    const { maxExchanges, maxBytes } = this.#options.settings.gateway.handoff;
    if (this.#inFlight + 1 > maxExchanges || this.#inFlightBytes + size > maxBytes) {
      this.#options.onCounts(dropCounts('handoff_full', 2, this.#depth));
      return;
    }
    const exchange: CapturedExchange = packExchange(input);
    this.#inFlight++;
    this.#inFlightBytes += size;
    this.#offers++;
    this.#pending.push(exchange);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // A few ms of batching costs the shadow path nothing and spares the live path a message per request.
    this.#flushTimer = setTimeout(() => this.#flush(), HANDOFF_BATCH_MS);
  }

  /** Resolves once the thread has handled everything offered so far and reported its counts. */
  sync(): Promise<void> {
    // The metrics of one scrape all ask at once: one round trip answers them while nothing new was offered.
    if (this.#sync !== undefined && this.#sync.offers === this.#offers) return this.#sync.promise;
    this.#flush();
    const promise = new Promise<void>((resolve) => {
      if (!this.#alive) {
        resolve();
        return;
      }
      const id = ++this.#syncId;
      const timer = setTimeout(() => {
        this.#synced.delete(id);
        resolve();
      }, SYNC_TIMEOUT_MS);
      this.#synced.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      this.#post({ type: 'sync', id });
    });
    const entry = { promise, offers: this.#offers };
    this.#sync = entry;
    void promise.then(() => {
      if (this.#sync === entry) this.#sync = undefined;
    });
    return promise;
  }

  /**
   * Tests only: blocks the thread (it takes nothing in, reports nothing, publishes nothing)
   * until the returned function is called, as a thread starved of CPU would be.
   */
  stall(): () => void {
    const flag = new SharedArrayBuffer(4);
    this.#post({ type: 'stall', flag });
    return () => {
      const view = new Int32Array(flag);
      Atomics.store(view, 0, 1);
      Atomics.notify(view, 0);
    };
  }

  /** Flushes the thread's buffer within the deadline, then stops the thread. */
  async close(deadlineMs: number): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined) return;
    this.#flush();
    // From here the thread reports what it flushed and what it had to drop itself.
    this.#closing = true;
    if (this.#alive) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#closed = resolve;
        timer = setTimeout(resolve, deadlineMs + CLOSE_GRACE_MS);
        this.#post({ type: 'close', deadlineMs });
      });
      clearTimeout(timer);
    }
    this.#alive = false;
    await worker.terminate();
  }

  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushScheduled = false;
    if (this.#pending.length === 0) return;
    const items = this.#pending;
    this.#pending = [];
    if (!this.#alive) {
      this.#forget(items);
      this.#options.onCounts(dropCounts('publisher_failed', 2 * items.length, this.#depth));
      return;
    }
    this.#posted += items.length;
    this.#post(
      { type: 'capture', items },
      items.map((item) => item.bytes),
    );
  }

  /**
   * The thread died: the events in its buffer (its last reported depth) and the exchanges it
   * never reported taking in are gone. They are counted as dropped, like everything after. (An
   * exchange sent in the last report interval before the death is counted dropped too: the
   * count errs toward loss, never hides one.)
   */
  #countLostInThread(): void {
    const lost = this.#depth + 2 * (this.#posted - this.#taken);
    this.#taken = this.#posted;
    this.#depth = 0;
    this.#bufferBytes = 0;
    this.#inFlight = this.#pending.length;
    this.#inFlightBytes = this.#pending.reduce((sum, item) => sum + item.bytes.byteLength, 0);
    if (lost > 0) this.#options.onCounts(dropCounts('publisher_failed', lost, 0));
  }

  #dropPending(): void {
    const items = this.#pending;
    this.#pending = [];
    this.#forget(items);
    if (items.length > 0) this.#options.onCounts(dropCounts('publisher_failed', 2 * items.length, this.#depth));
  }

  /** Exchanges that will never reach the thread leave the hand-off bound. */
  #forget(items: CapturedExchange[]): void {
    this.#inFlight -= items.length;
    for (const item of items) this.#inFlightBytes -= item.bytes.byteLength;
  }

  #post(message: ToPublisher, transfer: ArrayBuffer[] = []): void {
    this.#worker?.postMessage(message, transfer);
  }

  #receive(message: Exclude<FromPublisher, { type: 'ready' }>): void {
    switch (message.type) {
      case 'counts':
        this.#depth = message.counts.depth;
        this.#bufferBytes = message.counts.bytes;
        this.#taken += message.counts.taken;
        this.#inFlight -= message.counts.taken;
        this.#inFlightBytes -= message.counts.takenBytes;
        this.#options.onCounts(message.counts);
        return;
      case 'synced':
        this.#synced.get(message.id)?.();
        this.#synced.delete(message.id);
        return;
      case 'log':
        this.#options.log[message.level](message.obj, message.msg);
        return;
      case 'closed':
        this.#closed?.();
        return;
    }
  }
}

/** A report of `events` dropped on the live side, for `reason`. */
function dropCounts(reason: DropReason, events: number, depth: number): CountsReport {
  return { taken: 0, takenBytes: 0, sent: 0, dropped: { [reason]: events }, unpublishable: {}, notShadowed: {}, depth, bytes: 0 };
}
