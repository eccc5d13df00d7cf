import type { Message, Producer } from 'kafkajs';

interface Waiting {
  message: Message;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Awaited sends (acks=all) of many concurrent callers, coalesced: messages sent to one topic
 * while a produce request is being prepared go out together in the next one. Each caller's
 * promise settles with its own message's batch, so "offset committed only after the publish"
 * still holds per record; a stage with 64 records in flight makes one produce request, not 64.
 */
export class CoalescingSender {
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #maxBatch: number;
  #waiting: Waiting[] = [];
  #scheduled = false;

  constructor(producer: Producer, topic: string, maxBatch = 500) {
    this.#producer = producer;
    this.#topic = topic;
    this.#maxBatch = maxBatch;
  }

  send(message: Message): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ message, resolve, reject });
      if (this.#waiting.length >= this.#maxBatch) {
        this.#flush();
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        // After the current I/O callbacks: the answers arriving together join one request.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#waiting;
    if (batch.length === 0) return;
    this.#waiting = [];
    this.#producer.send({ topic: this.#topic, acks: -1, messages: batch.map((entry) => entry.message) }).then(
      () => {
        for (const entry of batch) entry.resolve();
      },
      (error: unknown) => {
        for (const entry of batch) entry.reject(error);
      },
    );
  }
}
