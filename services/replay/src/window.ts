import type { Kafka } from 'kafkajs';

/** Offsets `[start, end)` of one partition to scan for a time window. */
export interface PartitionRange {
  partition: number;
  start: bigint;
  end: bigint;
}

/**
 * Finds, for every partition, the offsets to scan for the window `[from, to)` in record time:
 * from the first offset at or after `from` (Kafka's offsets-by-timestamp: no earlier offset has a
 * timestamp in the window) to the first at or after `to + lateMs`. Timestamps need not grow with
 * offsets (several producers, their clocks and buffers), so records of the window can be written
 * after records past its end: `lateMs` is how much later they are still found. A partition with
 * nothing at or after that time ends at its current high watermark.
 */
export async function windowRanges(kafka: Kafka, topic: string, from: number, to: number, lateMs = 0): Promise<PartitionRange[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [starts, ends, highs] = await Promise.all([admin.fetchTopicOffsetsByTimestamp(topic, from), admin.fetchTopicOffsetsByTimestamp(topic, to + lateMs), admin.fetchTopicOffsets(topic)]);
    const high = new Map(highs.map((entry) => [entry.partition, BigInt(entry.high)]));
    const end = new Map(ends.map((entry) => [entry.partition, BigInt(entry.offset)]));
    return starts
      .map((entry) => {
        const partitionHigh = high.get(entry.partition) ?? 0n;
        const startOffset = BigInt(entry.offset) < 0n ? partitionHigh : BigInt(entry.offset);
        const rawEnd = end.get(entry.partition) ?? -1n;
        const endOffset = rawEnd < 0n ? partitionHigh : rawEnd;
        return { partition: entry.partition, start: startOffset, end: endOffset < startOffset ? startOffset : endOffset };
      })
      .sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect();
  }
}

export interface WindowOptions {
  from: number;
  to: number;
  /** Replay at the recorded inter-arrival times divided by this factor. */
  speed?: number | undefined;
}

/**
 * Tracks the scan of a window's offset ranges: which records belong to the window (timestamp in
 * `[from, to)`; without `time`, every record scanned), how many were handled, and when every
 * partition was read past the end of its range.
 *
 * A partition is done when the consumer has moved past its last offset, not when `end − start`
 * records were handled: transaction markers, records of aborted transactions (consumers read
 * committed) and offsets removed by compaction hold no record to deliver, so a count never gets
 * there. `total` is therefore an upper bound on the records read.
 */
export class WindowProgress {
  /** Offsets to scan: an upper bound on the records read. */
  readonly total: number;
  #done = 0;
  #inWindow = 0;
  #skipped = 0;
  readonly #ranges: Map<number, PartitionRange>;
  /** Records handled per partition, to tell how many offsets held none once it is done. */
  readonly #read = new Map<number, number>();
  /** Partitions not yet read past the end of their range. */
  readonly #open: Set<number>;
  readonly #time: { from: number; to: number } | undefined;
  readonly #finished: Promise<void>;
  #resolve: () => void = () => undefined;

  constructor(ranges: PartitionRange[], time?: { from: number; to: number }) {
    this.#ranges = new Map(ranges.map((range) => [range.partition, range]));
    this.#open = new Set(ranges.filter((range) => range.end > range.start).map((range) => range.partition));
    this.#time = time;
    this.total = ranges.reduce((sum, range) => sum + Number(range.end - range.start), 0);
    this.#finished = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    if (this.#open.size === 0) this.#resolve();
  }

  /** Records scanned so far. */
  get done(): number {
    return this.#done;
  }

  /** Records scanned so far whose timestamp is in the window. */
  get inWindow(): number {
    return this.#inWindow;
  }

  /** Offsets of the partitions done that held no record to read (markers, aborted or compacted records). */
  get skipped(): number {
    return this.#skipped;
  }

  /** Offsets passed: records read, and the offsets skipped in partitions done. Reaches `total` at the end. */
  get scanned(): number {
    return this.#done + this.#skipped;
  }

  /** Resolves when every partition was read past the end of its range. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /** The record is in the offsets to scan. */
  inRange(partition: number, offset: string): boolean {
    const range = this.#ranges.get(partition);
    if (range === undefined) return false;
    const value = BigInt(offset);
    return value >= range.start && value < range.end;
  }

  /** The record is part of the window: in the offsets to scan, and its timestamp in `[from, to)`. */
  contains(partition: number, offset: string, timestamp: number): boolean {
    if (!this.inRange(partition, offset)) return false;
    return this.#time === undefined || (timestamp >= this.#time.from && timestamp < this.#time.to);
  }

  startOffset(partition: number): string | undefined {
    return this.#ranges.get(partition)?.start.toString();
  }

  partitions(): number[] {
    return [...this.#ranges.keys()];
  }

  /** Called once per scanned record in range (redeliveries within one run are not expected). */
  handled(partition: number, inWindow = true): void {
    this.#done++;
    if (inWindow) this.#inWindow++;
    this.#read.set(partition, (this.#read.get(partition) ?? 0) + 1);
  }

  /**
   * The consumer has handled everything in the partition up to `offset` (a fetched batch done
   * to its end, filtered records included); the partition is done once that reaches its range's
   * last offset.
   */
  reached(partition: number, offset: string): void {
    const range = this.#ranges.get(partition);
    if (range === undefined || !this.#open.has(partition) || BigInt(offset) < range.end - 1n) return;
    this.#open.delete(partition);
    this.#skipped += Math.max(0, Number(range.end - range.start) - (this.#read.get(partition) ?? 0));
    if (this.#open.size === 0) this.#resolve();
  }
}

/**
 * Reads the records of the given offset ranges of a topic (no group offsets are committed), until
 * every partition was read past the end of its range.
 */
export async function readRanges(
  kafka: Kafka,
  topic: string,
  ranges: PartitionRange[],
  onRecord: (record: { partition: number; offset: string; key: Buffer | null; value: Buffer | null }) => Promise<void> | void,
  options: { timeoutMs?: number } = {},
): Promise<number> {
  const progress = new WindowProgress(ranges);
  if (progress.total === 0) return 0;
  const consumer = kafka.consumer({ groupId: `shadow-window-reader-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, maxBytesPerPartition: 4 * 1024 * 1024 });
  // A fetch holding only markers or aborted records never reaches eachBatch; kafkajs reports it here.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic === topic && payload.batchSize === 0) progress.reached(payload.partition, payload.lastOffset);
  });
  await consumer.connect();
  let count = 0;
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      // eachBatch, not eachMessage: the batch's last offset counts the filtered records after its last message.
      eachBatch: async (payload) => {
        const { batch } = payload;
        for (const message of batch.messages) {
          if (!payload.isRunning() || payload.isStale()) return;
          if (!progress.inRange(batch.partition, message.offset)) continue;
          await onRecord({ partition: batch.partition, offset: message.offset, key: message.key ?? null, value: message.value ?? null });
          count++;
          progress.handled(batch.partition);
          // Sent only when the heartbeat interval has passed.
          await payload.heartbeat();
        }
        progress.reached(batch.partition, batch.lastOffset());
      },
    });
    for (const partition of progress.partitions()) {
      const offset = progress.startOffset(partition);
      if (offset !== undefined) consumer.seek({ topic, partition, offset });
    }
    const timeoutMs = options.timeoutMs ?? 600_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      progress.finished,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`reading ${topic} did not reach the end of the window within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return count;
}
