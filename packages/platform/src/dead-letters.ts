import { DeadLetterHeader, deadLetterMessage, slimDeadLetter, type DeadLetterMessage, type DeadLetterStage } from '@shadow-replay/contracts';
import type { Producer } from 'kafkajs';
import type { ConsumedRecord } from './consumer.js';
import type { Logger } from './logger.js';

/** Publishes poison records to the dead-letter topic with their reason. */
export class DeadLetterPublisher {
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #stage: DeadLetterStage;
  readonly #log: Logger;

  constructor(options: { producer: Producer; topic: string; stage: DeadLetterStage; log: Logger }) {
    this.#producer = options.producer;
    this.#topic = options.topic;
    this.#stage = options.stage;
    this.#log = options.log;
  }

  /**
   * Publishes the record with its reason. A record close to the broker's size limit no longer
   * fits once the `x-dlq-*` headers are added, and a refused dead letter would stop its
   * partition for good (the batch is redone, refused again, forever): it is published without
   * its value, then if need be without its key and headers too, saying so in `x-dlq-omitted`.
   */
  async publish(record: ConsumedRecord, reason: string, experimentId?: string): Promise<void> {
    const message = deadLetterMessage(record, reason, this.#stage, experimentId);
    const where = { topic: record.topic, partition: record.partition, offset: record.offset, reason };
    for (const [attempt, candidate] of [message, slimDeadLetter(message, 1), slimDeadLetter(message, 2)].entries()) {
      try {
        await this.#send(candidate);
        if (attempt > 0) this.#log.warn({ ...where, omitted: candidate.headers[DeadLetterHeader.omitted] }, 'dead-lettered without what made it too large');
        else this.#log.warn(where, 'dead-lettered');
        return;
      } catch (error) {
        if (!isMessageTooLarge(error) || attempt === 2) throw error;
      }
    }
  }

  async #send(message: DeadLetterMessage): Promise<void> {
    await this.#producer.send({ topic: this.#topic, acks: -1, messages: [message] });
  }
}

/** The broker's MESSAGE_TOO_LARGE, however kafkajs wrapped it. */
function isMessageTooLarge(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    if ((current as { type?: unknown }).type === 'MESSAGE_TOO_LARGE') return true;
    current = (current as { cause?: unknown; originalError?: unknown }).cause ?? (current as { originalError?: unknown }).originalError;
  }
  return false;
}
