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
 * partition reached the end of its range.
 */
export class WindowProgress {
  /** Records to scan. */
  readonly total: number;
  #done = 0;
  #inWindow = 0;
  readonly #ranges: Map<number, PartitionRange>;
  readonly #remaining: Map<number, bigint>;
  readonly #time: { from: number; to: number } | undefined;
  readonly #finished: Promise<void>;
  #resolve: () => void = () => undefined;

  constructor(ranges: PartitionRange[], time?: { from: number; to: number }) {
    this.#ranges = new Map(ranges.map((range) => [range.partition, range]));
    this.#remaining = new Map(ranges.filter((range) => range.end > range.start).map((range) => [range.partition, range.end - range.start]));
    this.#time = time;
    this.total = ranges.reduce((sum, range) => sum + Number(range.end - range.start), 0);
    this.#finished = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    if (this.#remaining.size === 0) this.#resolve();
  }

  /** Records scanned so far. */
  get done(): number {
    return this.#done;
  }

  /** Records scanned so far whose timestamp is in the window. */
  get inWindow(): number {
    return this.#inWindow;
  }

  /** Resolves when every record of the ranges was handled. */
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

  /** Called once per scanned record (redeliveries within one run are not expected). */
  handled(partition: number, inWindow = true): void {
    this.#done++;
    if (inWindow) this.#inWindow++;
    const left = (this.#remaining.get(partition) ?? 0n) - 1n;
    if (left <= 0n) this.#remaining.delete(partition);
    else this.#remaining.set(partition, left);
    if (this.#remaining.size === 0) this.#resolve();
  }
}

/** Reads the records of the given offset ranges of a topic (no group offsets are committed). */
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
  await consumer.connect();
  let count = 0;
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (!progress.inRange(partition, message.offset)) return;
        await onRecord({ partition, offset: message.offset, key: message.key ?? null, value: message.value ?? null });
        count++;
        progress.handled(partition);
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
