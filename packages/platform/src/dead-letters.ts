import { deadLetterMessage, type DeadLetterStage } from '@shadow-replay/contracts';
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

  async publish(record: ConsumedRecord, reason: string, experimentId?: string): Promise<void> {
    const message = deadLetterMessage(record, reason, this.#stage, experimentId);
    await this.#producer.send({ topic: this.#topic, acks: -1, messages: [message] });
    this.#log.warn({ topic: record.topic, partition: record.partition, offset: record.offset, reason }, 'dead-lettered');
  }
}
